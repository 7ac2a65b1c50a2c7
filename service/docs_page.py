"""GET /docs: the API page, Redoc rendering /openapi.json.

Redoc is vendored (service/static/redoc: the pinned npm release's bundle
and its licence) and served from here, so the page works offline and
fetches nothing from a CDN; its Content-Security-Policy lets the browser
load nothing from anywhere else either.
"""

from __future__ import annotations

from importlib.resources import files

import falcon
from spectree import Response

from service.openapi import documented
from service.rendering import conditional, etag_of

BUNDLE = "redoc.standalone.js"
PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>service-foundation API</title>
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="/docs/redoc.standalone.js"></script>
</body>
</html>
"""
# Redoc styles itself inline and runs its search in a worker from a blob.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


class DocsPage:
    """GET /docs (the page) and GET /docs/redoc.standalone.js (Redoc)."""

    uses_database = False

    def __init__(self) -> None:
        self._bundle = b""
        self._tag = ""

    @documented(tags=["operations"], resp=Response("HTTP_200"))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The API page: this document, rendered by Redoc."""
        resp.data = PAGE
        resp.content_type = falcon.MEDIA_HTML
        resp.set_header("Content-Security-Policy", POLICY)

    @documented(tags=["operations"], etag=True, resp=Response("HTTP_200"))
    def on_get_bundle(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Redoc's script, as the pinned release ships it."""
        if not self._bundle:
            self._bundle = (files("service") / "static" / "redoc" / BUNDLE).read_bytes()
            self._tag = etag_of(self._bundle)
        resp.set_header("Cache-Control", "public, max-age=86400")
        kind = "text/javascript; charset=utf-8"
        conditional(req, resp, self._bundle, kind, self._tag)
