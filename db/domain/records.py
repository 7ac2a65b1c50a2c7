"""Plain, immutable values the store hands to callers (never Pony entities).

One record per row is a NamedTuple: a page of 50 messages builds 50 of
them, and a frozen dataclass's __init__ (object.__setattr__ per field)
costs three times a tuple's. The rest are frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


class MetadataRecord(NamedTuple):
    """One app_metadata row; updated_at is an aware UTC datetime."""

    key: str
    value: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MetadataPage:
    """A page of metadata ordered by key; next is the cursor or None."""

    items: list[MetadataRecord]
    next: str | None


class UserRecord(NamedTuple):
    """One user; created_at is an aware UTC datetime."""

    id: int
    handle: str
    display_name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Caller:
    """The user a bearer token belongs to, and that token's bookkeeping."""

    user: UserRecord
    token_id: int
    token_hash: bytes
    last_used_at: datetime | None


class MemberRecord(NamedTuple):
    """A member of a conversation."""

    handle: str
    display_name: str
    joined_at: datetime


class ConversationRecord(NamedTuple):
    """A conversation; members is empty in listings; owner None once nobody is left."""

    id: int
    title: str
    created_by: str
    owner: str | None
    created_at: datetime
    last_message_at: datetime
    members: tuple[MemberRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class ConversationPage:
    """Conversations by most recent activity; next is an opaque cursor or None."""

    items: list[ConversationRecord]
    next: str | None


class MessageRecord(NamedTuple):
    """One message; author is the author's handle."""

    id: int
    conversation_id: int
    author: str
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MessagePage:
    """A page of messages; next is the id to pass as before/after, or None."""

    items: list[MessageRecord]
    next: int | None


class SearchHit(NamedTuple):
    """A message matching a search, with a highlighted snippet of its body."""

    message_id: int
    conversation_id: int
    author: str
    created_at: datetime
    snippet: str


class DeletedMessage(NamedTuple):
    """A message that was deleted: which one, in which conversation."""

    id: int
    conversation_id: int


class MemberChange(NamedTuple):
    """A member added to or removed from a conversation, and by whom.

    by is the handle of who did it (the member themselves when they left),
    None for the operator.
    """

    conversation_id: int
    member: MemberRecord
    by: str | None


class OwnerChange(NamedTuple):
    """A conversation's new owner (None once nobody is left)."""

    conversation_id: int
    owner: str | None


class EventRecord(NamedTuple):
    """One stored event: data is the JSON text a stream sends as `data:`."""

    id: int
    conversation_id: int | None
    kind: str
    data: str
    created_at: datetime
