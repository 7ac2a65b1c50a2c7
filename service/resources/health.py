"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Literal

import falcon
from pydantic import BaseModel, Field
from spectree import Response

from db.database import Database
from service.openapi import Route, documented
from service.rendering import body
from service.resources import Context
from service.workers.board import Board


class HealthOut(BaseModel):
    """The process is alive."""

    status: Literal["ok"]


class WorkersOut(BaseModel):
    """The worker processes (SERVICE_WORKERS above 1)."""

    ready: int = Field(examples=[2], description="Workers serving now")
    configured: int = Field(examples=[2], description="SERVICE_WORKERS")


class ReadyOut(BaseModel):
    """Readiness: the schema is current (and every worker serves)."""

    status: Literal["ready", "not ready"]
    schema_version: int | None = Field(examples=[3])
    pending: list[int] = Field(examples=[[]])
    edited: list[int] = Field(default_factory=list, examples=[[]])
    fault: str | None = Field(
        None, description="Why the database cannot serve (absent when it can)"
    )
    workers: WorkersOut | None = Field(
        None,
        description="With several worker processes: how many serve; ready only "
        "when all do (absent with one process)",
    )


_OK = body(HealthOut, {"status": "ok"})


class Health:
    """GET /healthz: the process answers; no database work."""

    uses_database = False

    @documented(tags=["health"], resp=Response(HTTP_200=HealthOut))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer 200 while the process is alive."""
        resp.data = _OK
        resp.content_type = falcon.MEDIA_JSON


class Ready:
    """GET /readyz: 200 when the schema is current (and every worker serves)."""

    def __init__(self, database: Database, workers: Board | None = None) -> None:
        self._database = database
        self._workers = workers

    @documented(
        tags=["health"],
        resp=Response(HTTP_200=ReadyOut, HTTP_503=ReadyOut),
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Report the schema version, anything pending or edited, any fault."""
        fault = self._database.fault()
        if fault is not None:
            # A vanished file cannot be asked for its history: the fault it is.
            body = ReadyOut(
                status="not ready", schema_version=None, pending=[], fault=fault
            )
        else:
            state = self._database.state(self._database.applied_versions())
            body = ReadyOut(
                status="ready" if state.clean else "not ready",
                schema_version=state.version,
                pending=state.pending,
                edited=state.edited,
            )
        if self._workers is not None:
            seen = self._workers.readiness()
            body.workers = WorkersOut(ready=seen.ready, configured=seen.configured)
            if not seen.complete:
                # A worker restarting (or gone for good, and the supervisor
                # stopping): the instance serves less than it should.
                body.status = "not ready"
        ready = body.status == "ready"
        resp.media = body.model_dump(mode="json", exclude_none=True)
        if not ready:
            resp.status = falcon.HTTP_503
            resp.set_header("Retry-After", "5")


def routes(context: Context) -> list[Route]:
    """The liveness and readiness probes."""
    return [
        ("/healthz", Health(), None),
        ("/readyz", Ready(context.database, context.workers), None),
    ]
