"""The models every resource shares: problems, handles, cursors.

A resource's own request and response models live in its module under
service/resources/ (docs/endpoint.md): only what several resources use is
here.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

HANDLE_PATTERN = r"^[a-z0-9_]{3,32}$"
# Opaque cursors are unpadded base64url: the pattern says what may be sent,
# the store whether it is one it issued (422 otherwise).
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"

Handle = Annotated[
    str,
    StringConstraints(pattern=HANDLE_PATTERN),
    Field(description="3-32 of a-z, 0-9 and _", examples=["bob"]),
]


class ProblemError(BaseModel):
    """One validation error inside a problem."""

    detail: str
    pointer: str | None = Field(None, description="JSON pointer into the body")
    parameter: str | None = Field(None, description="Query or path parameter")


class ProblemOut(BaseModel):
    """RFC 9457 problem details (application/problem+json)."""

    type: str = Field("about:blank", examples=["about:blank"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(None, examples=["no conversation 7"])
    request_id: str | None = Field(None, examples=["4f1c2a9be07d55a10000000000000001"])
    errors: list[ProblemError] | None = None
