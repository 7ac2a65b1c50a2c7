"""The models several resources share: problems, handles, cursors, members.

A resource's own request and response models live in its module under
service/resources/ (docs/endpoint.md): only what several resources use is
here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from db.domain.records import ConversationRecord, MemberRecord

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


# Conversations and their members: conversations.py and ownership.py answer them.


class MemberIn(BaseModel):
    """Body of POST /v1/conversations/{conversation_id}/members."""

    model_config = ConfigDict(extra="forbid", strict=True)

    handle: Handle = Field(description="An existing user's handle (404 if none)")


class MemberOut(BaseModel):
    """A member of a conversation."""

    __record__: ClassVar[type] = MemberRecord

    handle: str = Field(examples=["bob"])
    display_name: str = Field(examples=["Bob"])
    joined_at: datetime = Field(examples=["2026-11-29T03:40:02.000000Z"])


class ConversationSummaryOut(BaseModel):
    """A conversation in a listing."""

    __record__: ClassVar[type] = ConversationRecord

    id: int = Field(examples=[1])
    title: str = Field(examples=["Plans"])
    created_by: str = Field(description="The creator's handle", examples=["ann"])
    owner: str | None = Field(
        description="The owner's handle: adds and removes others; null once "
        "nobody is left",
        examples=["ann"],
    )
    created_at: datetime = Field(examples=["2026-11-29T03:40:02.000000Z"])
    last_message_at: datetime = Field(
        description="Latest message, or created_at",
        examples=["2026-11-29T03:41:10.120311Z"],
    )


class ConversationOut(ConversationSummaryOut):
    """A conversation with its members."""

    members: list[MemberOut]
