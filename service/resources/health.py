"""Liveness and readiness probes."""

from __future__ import annotations

import falcon
from spectree import Response

from db import Database
from service.openapi import documented
from service.schemas import HealthOut, ReadyOut


class Health:
    """GET /healthz: the process answers; no database work."""

    uses_database = False

    @documented(tags=["health"], resp=Response(HTTP_200=HealthOut))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer 200 while the process is alive."""
        resp.media = {"status": "ok"}


class Ready:
    """GET /readyz: 200 when the schema is current, 503 otherwise."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @documented(
        tags=["health"],
        resp=Response(HTTP_200=ReadyOut, HTTP_503=ReadyOut),
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Report the schema version and anything pending or edited."""
        state = self._database.state(self._database.store.applied_versions())
        body = ReadyOut(
            status="ready" if state.clean else "not ready",
            schema_version=state.version,
            pending=state.pending,
            edited=state.edited,
        )
        resp.media = body.model_dump(mode="json")
        if not state.clean:
            resp.status = falcon.HTTP_503
            resp.set_header("Retry-After", "5")
