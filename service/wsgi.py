"""The WSGI app for other servers (gunicorn service.wsgi:app); built at import."""

from service.app import create_app
from service.config import load_settings

app = create_app(load_settings())
