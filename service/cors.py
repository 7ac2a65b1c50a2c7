"""CORS (SERVICE_CORS_ORIGINS): which browser origins may call the API.

Falcon's CORSMiddleware answers preflights from each route's Allow header
and marks answers to allowed origins. Off unless origins are configured;
no credentials (the API takes bearer tokens, not cookies).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import falcon

ANY_ORIGIN = "*"
# What a script may read beyond the CORS-safelisted headers: the request id a
# bug report quotes, where a 201 put the resource, the validator to send back,
# when to retry, and which credentials a 401 wants.
EXPOSED_HEADERS = (
    "X-Request-ID",
    "Location",
    "ETag",
    "Retry-After",
    "WWW-Authenticate",
)


def parse_origins(value: Iterable[str]) -> tuple[str, ...]:
    """The origins as browsers send them (ValueError on anything else)."""
    given = [origin.strip() for origin in value if origin.strip()]
    if ANY_ORIGIN in given:
        if len(given) > 1:
            raise ValueError("* (any origin) stands alone, without other origins")
        return (ANY_ORIGIN,)
    origins = []
    for origin in given:
        # Browsers send scheme://host[:port] in lowercase with nothing after
        # it: any other spelling would never match.
        lowered = origin.lower()
        parts = urlsplit(lowered)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or f"{parts.scheme}://{parts.netloc}" != lowered
        ):
            raise ValueError(
                f"{origin!r} is not an origin: scheme://host[:port], without a path "
                "or a trailing slash (https://app.example.com)"
            )
        origins.append(lowered)
    return tuple(dict.fromkeys(origins))


class CorsPolicy(falcon.CORSMiddleware):  # type: ignore[type-arg]
    """Falcon's CORS middleware, plus `Vary: Origin` when the answer depends on it."""

    def __init__(self, origins: tuple[str, ...]) -> None:
        super().__init__(
            allow_origins=ANY_ORIGIN if origins == (ANY_ORIGIN,) else origins,
            expose_headers=EXPOSED_HEADERS,
        )
        self._varies = origins != (ANY_ORIGIN,)

    def process_response(
        self, req: Any, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Mark the answer for an allowed origin; answer a preflight."""
        super().process_response(req, resp, resource, req_succeeded)
        if self._varies:
            # A listed origin is echoed back: a cache must not serve one
            # origin's answer to another (Falcon leaves this out).
            resp.append_header("Vary", "Origin")
