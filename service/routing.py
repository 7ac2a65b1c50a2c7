"""Routes: HEAD and OPTIONS from the responders, the path clients see."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import falcon

# Falcon's field converters ({id:int(min=1)}) are not part of the path clients see.
_CONVERTER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):[^{}]*\}")


@functools.lru_cache(maxsize=1024)
def openapi_path(template: str) -> str:
    """Falcon's URI template as the OpenAPI document writes it: {name}, no converter."""
    return _CONVERTER.sub(r"{\1}", template)


# The methods a responder can exist for, in the order Allow lists them.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _responder_name(method: str, suffix: str | None) -> str:
    return f"on_{method.lower()}" + (f"_{suffix}" if suffix else "")


def allowed_methods(resource: object, suffix: str | None) -> list[str]:
    """The methods resource answers for the route with this suffix."""
    found = {m for m in _METHODS if hasattr(resource, _responder_name(m, suffix))}
    if "GET" in found:
        found.add("HEAD")
    found.add("OPTIONS")
    return [m for m in _METHODS if m in found]


def _options_responder(allowed: str) -> Callable[..., None]:
    def on_options(req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        """Answer with the methods this route allows (RFC 9110 §9.3.7)."""
        resp.status = falcon.HTTP_200
        resp.set_header("Allow", allowed)
        resp.set_header("Content-Length", "0")

    return on_options


def complete_methods(resource: object, suffix: str | None) -> None:
    """Give the resource HEAD (as GET, without the body) and OPTIONS responders.

    Falcon answers HEAD with 405 unless a responder exists, and its default
    OPTIONS leaves OPTIONS out of Allow. Falcon itself drops the body of a
    HEAD answer and keeps GET's Content-Length. Set on the instance, so the
    OpenAPI document (built from the class) stays GET-only.
    """
    allowed = ", ".join(allowed_methods(resource, suffix))
    get = getattr(resource, _responder_name("GET", suffix), None)
    head = _responder_name("HEAD", suffix)
    if get is not None and not hasattr(resource, head):
        setattr(resource, head, get)
    options = _responder_name("OPTIONS", suffix)
    if not hasattr(resource, options):
        setattr(resource, options, _options_responder(allowed))
