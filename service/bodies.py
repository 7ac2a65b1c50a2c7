"""Read and validate JSON request bodies: 413, 415, 400 and 422 in one place.

The size limit is the app's (SERVICE_MAX_BODY_BYTES): create_app() gives
falcon.App a request class carrying it (request_class), so a responder
calls read_json(req, Model) and no resource is handed the setting.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

import falcon
from pydantic import BaseModel, ValidationError

from service.config import Settings
from service.problems import Problem, validation_errors

ModelT = TypeVar("ModelT", bound=BaseModel)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class Request(falcon.Request):
    """falcon.Request with the app's request limits."""

    max_body: ClassVar[int] = Settings.model_fields["max_body_bytes"].default


def request_class(max_body: int) -> type[Request]:
    """A request class for one app, with its body limit."""
    return type("Request", (Request,), {"max_body": max_body})


def read_json(req: falcon.Request, model: type[ModelT]) -> ModelT:
    """Parse the body as model; every failure is a client error with a detail."""
    max_bytes = req.max_body if isinstance(req, Request) else Request.max_body
    length = req.content_length
    if length is not None and length > max_bytes:
        raise Problem(413, f"request body is {length} bytes; the limit is {max_bytes}")
    if not _is_json(req.content_type):
        raise Problem(
            415,
            f"send the body as application/json (got {req.content_type or 'no Content-Type'})",
        )
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise Problem(413, f"request body exceeds the limit of {max_bytes} bytes")
    if not raw.strip():
        raise Problem(400, "request body is empty; a JSON object is required")
    try:
        return model.model_validate_json(raw)
    except ValidationError as ex:
        if any(e["type"] in ("json_invalid", "json_type") for e in ex.errors()):
            first = ex.errors(include_url=False)[0]
            raise Problem(
                400, f"request body is not valid JSON: {first['msg']}"
            ) from ex
        raise Problem(
            422,
            "request body does not match the schema",
            errors=validation_errors(ex, "body"),
        ) from ex


def check_utf8_size(text: str, field: str, max_bytes: int) -> None:
    """Refuse a text field that is not encodable (422) or too large in UTF-8 (413)."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as ex:
        raise Problem(
            422,
            f"{field} must be valid Unicode text (it holds a lone surrogate)",
            errors=[{"detail": str(ex.reason), "pointer": f"#/{field}"}],
        ) from ex
    if size > max_bytes:
        raise Problem(
            413, f"{field} is {size} bytes of UTF-8; the limit is {max_bytes}"
        )
