"""RFC 9457 problem details: one shape for every error response."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import falcon
from pydantic import ValidationError

from db.errors import (
    BusyError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    StorageError,
    StorageFullError,
)
from db.session import DRIVER_ERRORS, translate

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 1
STORAGE_RETRY_AFTER_SECONDS = 30
# RFC 9110 §15 renamed these; Python 3.11's HTTPStatus and Falcon still use
# (some of) the RFC 7231 phrases. Titles and status lines come from here.
_RFC9110_PHRASES = {
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}


def phrase(status: int) -> str:
    """The RFC 9110 reason phrase of a status code."""
    return _RFC9110_PHRASES.get(status) or HTTPStatus(status).phrase


def status_line(status: int) -> str:
    """A status line ("422 Unprocessable Content") whose phrase is RFC 9110's."""
    return f"{status} {phrase(status)}"


class Problem(falcon.HTTPError):
    """An HTTP error with RFC 9457 fields; raise it from anywhere."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_line(status), description=detail, headers=headers)
        self.errors = errors


def validation_errors(ex: ValidationError, location: str) -> list[dict[str, Any]]:
    """Pydantic errors as problem entries pointing at the body or a parameter."""
    out: list[dict[str, Any]] = []
    for error in ex.errors(include_url=False, include_input=False):
        path = [str(part) for part in error["loc"]]
        entry: dict[str, Any] = {"detail": error["msg"]}
        if location == "body":
            entry["pointer"] = "#/" + "/".join(path)
        else:
            entry["parameter"] = ".".join(path)
        out.append(entry)
    return out


def serialize(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError) -> None:
    """Render every HTTPError, Falcon's own included, as problem+json."""
    # Falcon's own errors carry its phrases: the status line says the title.
    resp.status = status_line(ex.status_code)
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": phrase(ex.status_code),
        "status": ex.status_code,
    }
    if ex.description:
        body["detail"] = ex.description
    request_id = getattr(req.context, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    errors = getattr(ex, "errors", None)
    if errors:
        body["errors"] = errors
    resp.content_type = PROBLEM_JSON
    resp.data = json.dumps(body, ensure_ascii=False).encode()


def _not_found(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    raise Problem(404, str(ex)) from ex


def _conflict(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    raise Problem(409, str(ex)) from ex


def _forbidden(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    raise Problem(403, str(ex)) from ex


def _unexpected(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    # The traceback goes to the log with the request id, never to the client.
    log.error(
        "unhandled error",
        exc_info=ex,
        extra={"http.request.id": req.context.get("request_id"), "url.path": req.path},
    )
    raise Problem(
        500, "internal error; the request id identifies it in the logs"
    ) from ex


def _busy_problem(req: falcon.Request, ex: Exception) -> Problem:
    log.warning(
        "database busy: %s",
        ex,
        extra={"http.request.id": req.context.get("request_id")},
    )
    return Problem(
        503,
        "the database is busy; retry shortly",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _storage_problem(req: falcon.Request, ex: Exception) -> Problem:
    # One line, no traceback: the machine's fault, not the request's.
    log.error(
        "database storage failed: %s",
        ex,
        extra={"http.request.id": req.context.get("request_id"), "url.path": req.path},
    )
    if isinstance(ex, StorageFullError):
        return Problem(
            507,
            "the server has no space left to store this change; retry later",
            headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)},
        )
    return Problem(
        503,
        "the database cannot be used right now; retry later",
        headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)},
    )


def register(app: falcon.App, on_busy: Callable[[], object] = lambda: None) -> None:  # type: ignore[type-arg]
    """Install the handlers and the serializer on app; on_busy counts 503s."""

    def busy(
        req: falcon.Request,
        resp: falcon.Response,
        ex: Exception,
        params: dict[str, Any],
    ) -> None:
        on_busy()
        raise _busy_problem(req, ex) from ex

    def driver(
        req: falcon.Request,
        resp: falcon.Response,
        ex: Exception,
        params: dict[str, Any],
    ) -> None:
        # Pony's and the drivers' exception types: decide by what the engine said.
        translated = translate(ex)
        if isinstance(translated, BusyError):
            busy(req, resp, translated, params)
        if isinstance(translated, ConflictError):
            _conflict(req, resp, translated, params)
        if isinstance(translated, StorageError):
            storage(req, resp, translated, params)
        _unexpected(req, resp, ex, params)

    def storage(
        req: falcon.Request,
        resp: falcon.Response,
        ex: Exception,
        params: dict[str, Any],
    ) -> None:
        raise _storage_problem(req, ex) from ex

    app.add_error_handler(Exception, _unexpected)
    for driver_error in DRIVER_ERRORS:
        app.add_error_handler(driver_error, driver)
    app.add_error_handler(NotFoundError, _not_found)
    app.add_error_handler(ConflictError, _conflict)
    app.add_error_handler(ForbiddenError, _forbidden)
    app.add_error_handler(BusyError, busy)
    app.add_error_handler(StorageError, storage)
    app.set_error_serializer(serialize)
