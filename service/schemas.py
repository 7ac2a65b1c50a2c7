"""Pydantic request and response models: the HTTP contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.fields import MAX_ID, AnyText, Key, Text

MAX_VALUE_BYTES = 65_536


class MetadataIn(BaseModel):
    """Body of PUT /v1/metadata/{key}."""

    model_config = ConfigDict(extra="forbid", strict=True)

    value: AnyText = Field(description="Any UTF-8 text up to 64 KiB but U+0000")


class MetadataOut(BaseModel):
    """One metadata entry."""

    model_config = ConfigDict(regex_engine="python-re")  # KEY_PATTERN looks ahead

    key: Key
    value: str
    updated_at: datetime = Field(description="Last change, ISO 8601 in UTC")


class MetadataPageOut(BaseModel):
    """A page of entries ordered by key."""

    model_config = ConfigDict(regex_engine="python-re")

    items: list[MetadataOut]
    next: Key | None = Field(
        description="Pass as ?after= for the next page; null at the end"
    )


class MetadataQuery(BaseModel):
    """Query parameters of GET /v1/metadata."""

    # Unknown parameters are refused (422): a typo such as ?limt= never goes unnoticed.
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")

    limit: int = Field(100, ge=1, le=1000)
    after: Key | None = None


class HealthOut(BaseModel):
    """The process is alive."""

    status: Literal["ok"]


class ReadyOut(BaseModel):
    """Readiness: the schema is current."""

    status: Literal["ready", "not ready"]
    schema_version: int | None
    pending: list[int]
    edited: list[int] = Field(default_factory=list)
    fault: str | None = Field(
        None, description="Why the database cannot serve (absent when it can)"
    )


class ProblemError(BaseModel):
    """One validation error inside a problem."""

    detail: str
    pointer: str | None = Field(None, description="JSON pointer into the body")
    parameter: str | None = Field(None, description="Query or path parameter")


class ProblemOut(BaseModel):
    """RFC 9457 problem details (application/problem+json)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    request_id: str | None = None
    errors: list[ProblemError] | None = None


# Messaging: users, tokens, conversations, messages, search.

HANDLE_PATTERN = r"^[a-z0-9_]{3,32}$"
MAX_BODY_BYTES = 32_768

Handle = Annotated[str, StringConstraints(pattern=HANDLE_PATTERN)]


class UserIn(BaseModel):
    """Body of POST /v1/users."""

    model_config = ConfigDict(extra="forbid", strict=True)

    handle: Handle = Field(description="3-32 of a-z, 0-9 and _; unique")
    display_name: Text = Field(min_length=1, max_length=100)


class UserOut(BaseModel):
    """A user."""

    id: int
    handle: str
    display_name: str
    created_at: datetime = Field(description="ISO 8601 in UTC")


class TokenOut(BaseModel):
    """A new API token: shown here once, never again."""

    id: int
    token: str = Field(description="Send as Authorization: Bearer <token>")


class ConversationIn(BaseModel):
    """Body of POST /v1/conversations."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: Text = Field(min_length=1, max_length=200)
    members: list[Handle] = Field(
        default_factory=list,
        max_length=100,
        description="Handles to add; the creator is always a member",
    )


class MemberIn(BaseModel):
    """Body of POST /v1/conversations/{conversation_id}/members."""

    model_config = ConfigDict(extra="forbid", strict=True)

    handle: Handle


class OwnerIn(BaseModel):
    """Body of PUT /v1/conversations/{conversation_id}/owner."""

    model_config = ConfigDict(extra="forbid", strict=True)

    handle: Handle = Field(description="A member, who becomes the owner")


class MemberOut(BaseModel):
    """A member of a conversation."""

    handle: str
    display_name: str
    joined_at: datetime


class ConversationSummaryOut(BaseModel):
    """A conversation in a listing."""

    id: int
    title: str
    created_by: str = Field(description="The creator's handle")
    owner: str | None = Field(
        description="The owner's handle: adds and removes others; null once "
        "nobody is left"
    )
    created_at: datetime
    last_message_at: datetime = Field(description="Latest message, or created_at")


class ConversationOut(ConversationSummaryOut):
    """A conversation with its members."""

    members: list[MemberOut]


class ConversationPageOut(BaseModel):
    """My conversations, most recent activity first."""

    items: list[ConversationSummaryOut]
    next: str | None = Field(description="Pass as ?cursor= for the next page")


class ConversationsQuery(BaseModel):
    """Query parameters of GET /v1/conversations."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=200)


class MessageIn(BaseModel):
    """Body of POST /v1/conversations/{conversation_id}/messages."""

    model_config = ConfigDict(extra="forbid", strict=True)

    body: Text = Field(
        min_length=1,
        description="1 character to 32 KiB of UTF-8; no control characters but tab, "
        "line feed and carriage return",
    )


class MessageOut(BaseModel):
    """One message."""

    id: int
    conversation_id: int
    author: str = Field(description="The author's handle")
    body: str
    created_at: datetime


class MessagePageOut(BaseModel):
    """A page of messages."""

    items: list[MessageOut]
    next: int | None = Field(
        description="Pass as ?before= (newest first) or ?after= (oldest first, when "
        "the page was asked with after) for the next page; null at the end"
    )


class MessagesQuery(BaseModel):
    """Query parameters of GET /v1/conversations/{conversation_id}/messages."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=200)
    before: int | None = Field(
        None, ge=1, le=MAX_ID, description="Newest first, ids below this"
    )
    after: int | None = Field(
        None, ge=0, le=MAX_ID, description="Oldest first, ids above this"
    )


class SearchQuery(BaseModel):
    """Query parameters of GET /v1/search."""

    model_config = ConfigDict(extra="forbid")

    q: Text = Field(
        min_length=1,
        max_length=200,
        description="Words to find, all of them (at most 16 words)",
    )
    limit: int = Field(20, ge=1, le=50)


class SearchHitOut(BaseModel):
    """A message that matches, with a snippet of its body.

    The snippet is HTML: the text is escaped and the matched terms are
    wrapped in <mark>...</mark>, so it can be inserted into a page as is.
    """

    message_id: int
    conversation_id: int
    author: str
    created_at: datetime
    snippet: str


class SearchOut(BaseModel):
    """Search hits from my conversations, best first."""

    items: list[SearchHitOut]
