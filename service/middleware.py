"""Middleware: request ids, metrics and access log; one unit of work per request."""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import falcon

from db.database import Database
from db.session import READ, finish
from service import logs
from service.metrics import Metrics
from service.openapi import Requirement
from service.problems import Problem
from service.routing import openapi_path

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_INCOMING_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# RFC 9112 §3.2: an HTTP/1.1 request without Host, or with more than one
# (the server joins repeated fields with commas), is answered 400.
_BAD_HOST = "an HTTP/1.1 request needs exactly one Host header (RFC 9112, 3.2)"

# Request ids: 32 hex digits, a random half for this process and a counter.
# Unique without a getrandom(2) call per request; they correlate lines and
# answers, they are not secrets.
_ID_PREFIX = secrets.token_hex(8)
_id_counter = itertools.count(1)


def new_request_id() -> str:
    """A request id no other request of any process is likely to have."""
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


def _is_utf8(path_info: str) -> bool:
    """Whether a WSGI PATH_INFO (bytes as latin-1, PEP 3333) is UTF-8."""
    try:
        path_info.encode("iso-8859-1").decode("utf-8")
    except UnicodeError:
        return False
    return True


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
        if "," in req.env.get("HTTP_HOST", "") or (
            "HTTP_HOST" not in req.env and req.env.get("SERVER_PROTOCOL") == "HTTP/1.1"
        ):
            raise Problem(400, _BAD_HOST)
        # Falcon decodes the path leniently: bytes that are not UTF-8 become
        # U+FFFD, which would then be routed, checked and stored as if sent.
        if "\ufffd" in req.path and not _is_utf8(req.env.get("PATH_INFO", "")):
            raise Problem(
                400, "the path is not valid UTF-8 (percent-encode UTF-8 bytes)"
            )

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
        template = req.uri_template
        self._metrics.observe_request(template, req.method, status, elapsed)
        logs.log_access(
            req.method,
            req.path,
            None if template is None else openapi_path(template),
            status,
            elapsed,
            req.context.request_id,
        )


class DbSession:
    """One Pony db_session per request that reaches a resource using the database.

    Entered in process_resource (so 404s and /healthz never touch the
    database) and left in process_response: committed when the answer is
    below 400, rolled back otherwise. Between the two, in this order:

    1. the responder's declared authentication runs (service.auth): a
       token lookup is a read in autocommit mode;
    2. a writing method (POST, PUT, PATCH, DELETE) begins its write
       transaction: this process's write gate (bounded by
       SERVICE_WRITE_LOCK_TIMEOUT, 503 past it), then BEGIN IMMEDIATE
       on SQLite. So a request with a bad token never waits for the
       write lock, and everything the responder reads and writes is one
       transaction;
    3. inside it, after the lock, a user's token is confirmed (one
       primary-key read, FOR KEY SHARE on PostgreSQL): a revocation
       answered 204 while the request waited for the lock refuses it
       (401), so the 204 is final.

    The exact object entered is the one left, so a session can never leak
    into the thread's next request.
    """

    def __init__(
        self,
        database: Database,
        authenticate: Callable[[falcon.Request, Requirement], None],
        requirements: dict[tuple[str, str], Requirement],
        confirm: Callable[[falcon.Request, Requirement], None] | None = None,
        written: Callable[[bool], None] | None = None,
    ) -> None:
        self._database = database
        self._authenticate = authenticate
        self._requirements = requirements
        self._confirm = confirm
        # After a write transaction ended: whether it committed.
        self._written = written

    def process_resource(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        resource: Any,
        params: dict[str, Any],
    ) -> None:
        """Enter the session, authenticate, begin the write transaction, confirm."""
        if resource is None:
            return
        requirement = self._requirements.get((req.uri_template or "", req.method))
        # A resource may take its token from ?access_token= (service.auth).
        req.context.query_token = getattr(resource, "query_token", False)
        if not getattr(resource, "uses_database", True):
            self._authenticate(req, requirement)
            return
        session = READ
        session.__enter__()
        req.context.db_session = session
        self._authenticate(req, requirement)
        if req.method in WRITE_METHODS:
            self._database.begin_write()
            req.context.db_writing = True
            if self._confirm is not None:
                self._confirm(req, requirement)

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
        writing = req.context.get("db_writing", False)
        req.context.db_writing = False
        committed = False
        try:
            finish(session, req_succeeded and resp.status_code < 400)
            committed = req_succeeded and resp.status_code < 400
        finally:
            if writing:
                self._database.end_write()
                if self._written is not None:
                    self._written(committed)
