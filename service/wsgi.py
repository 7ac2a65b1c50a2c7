"""The WSGI app for other servers (`gunicorn service.wsgi:app`); built at import.

Like `serve`: settings from the environment (a bad one stops the worker
with one line, exit 2), JSON logs, the database migrated and checked (a
failure is one line, exit 1). The database is closed at interpreter exit,
which checkpoints the WAL and removes -wal and -shm. Each worker process
must import this itself: do not use gunicorn's --preload, which would
open the database in the master and hand its connection to every fork.
"""

from __future__ import annotations

import atexit
import logging
import sys

from db.errors import StartupError
from service import logs
from service.app import create_app, open_for
from service.cli.common import EXIT_CONFIG, EXIT_FAILED
from service.cli.failures import naming_the_setting
from service.config import ConfigError, load_settings

log = logging.getLogger("service")

try:
    settings = load_settings()
except ConfigError as ex:
    print(f"configuration error: {ex}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG) from None
logs.configure(settings.log_level)
try:
    database = open_for(settings)
except (StartupError, TimeoutError, OSError) as ex:
    cause = naming_the_setting(str(ex), ex, settings)
    log.critical("start-up failed: %s", cause, extra={"event.action": "failed"})
    raise SystemExit(EXIT_FAILED) from None
atexit.register(database.close)
app = create_app(settings, database=database)
