"""Middleware: request ids, metrics and access log; one unit of work per request."""

from __future__ import annotations

import itertools
import re
import secrets
import time
from typing import Any

import falcon

from db.session import Session
from service import logs
from service.metrics import Metrics

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_INCOMING_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# Request ids: 32 hex digits, a random half for this process and a counter.
# Unique without a getrandom(2) call per request; they correlate lines and
# answers, they are not secrets.
_ID_PREFIX = secrets.token_hex(8)
_id_counter = itertools.count(1)


def new_request_id() -> str:
    """A request id no other request of any process is likely to have."""
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


class RequestContext:
    """Give each request an id (kept from X-Request-ID if sane), time, count and log it."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Assign the request id before anything else can fail."""
        req.context.started = time.perf_counter()
        incoming = req.env.get("HTTP_X_REQUEST_ID")  # get_header, minus its work
        if incoming and _INCOMING_ID.match(incoming):
            request_id = incoming
        else:
            request_id = new_request_id()
        req.context.request_id = request_id
        resp.set_header("X-Request-ID", request_id)

    def process_response(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        resource: Any,
        req_succeeded: bool,
    ) -> None:
        """Record the request's metrics and write its access line."""
        elapsed = time.perf_counter() - req.context.started
        status = resp.status_code
        self._metrics.observe_request(
            req.uri_template or "unmatched", req.method, status, elapsed
        )
        if logs.access.enabled():
            logs.access.write(
                req.method,
                req.path,
                status,
                elapsed,
                req.context.request_id,
            )


class DbSession:
    """Own one unit of work per request that reaches a resource using the database.

    Entered in process_resource (so 404s and /healthz never touch SQLite),
    writing for writing methods (db.session.Session says what that costs
    and when), committed in process_response when the request succeeded
    and rolled back otherwise. The exact object entered is
    the one finished, so a session can never leak into the thread's next
    request.
    """

    def process_resource(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        resource: Any,
        params: dict[str, Any],
    ) -> None:
        """Enter the session just before the responder runs."""
        if resource is None or not getattr(resource, "uses_database", True):
            return
        session = Session(write=req.method in WRITE_METHODS)
        session.enter()
        req.context.db_session = session

    def process_response(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        resource: Any,
        req_succeeded: bool,
    ) -> None:
        """Commit or roll back; a failed commit raises into the error handlers."""
        session = req.context.get("db_session")
        if session is None:
            return
        req.context.db_session = None
        session.finish(req_succeeded and resp.status_code < 400)
