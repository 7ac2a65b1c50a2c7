"""Events: what happened in conversations, written with the change itself.

Every change a stream tells of (a message posted or deleted, a member
added or removed, a conversation created, its owner changed, a token
revoked) appends one Event row in the write transaction that makes the
change, after its lock and its checks: an acknowledged write always has
its event, a rolled-back one never does. The row's id is the event's
position: SQLite's writers take turns, so ids follow commit order; on
PostgreSQL they may commit out of order, which the reader settles
(db/engines/postgres/events.py).

Who may see an event is kept as membership periods in event ids
(MembershipPeriod): a period opens at the event that made the user a
member and closes at the one that removed them, both included. So a
removed member receives their own removal and nothing after, and a
reader resuming hours later is judged by who was a member when each
event happened, not by who is one now. One row per event and one per
membership change, whatever the conversation's size: per-recipient rows
would cost a post one insert per member (docs/api.md, "Live delivery",
has the measurement).

The data is rendered when the event is written, by the encoder the HTTP
layer installs (its response models: the stream sends what the REST
answers send); plain_json stands in where nothing installed one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from pony import orm

from db.domain.records import (
    ConversationRecord,
    DeletedMessage,
    MemberChange,
    MemberRecord,
    MessageRecord,
    OwnerChange,
)
from db.engines.base.operations import Dialect

Encoder = Callable[[str, Any], str]

CONVERSATION_CREATED = "conversation.created"
MESSAGE_POSTED = "message.posted"
MESSAGE_DELETED = "message.deleted"
MEMBER_ADDED = "member.added"
MEMBER_REMOVED = "member.removed"
OWNER_CHANGED = "owner.changed"
# Not delivered to anyone: it ends the streams of that token.
TOKEN_REVOKED = "token.revoked"  # noqa: S105 - an event type, not a secret


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return moment.replace(tzinfo=None).isoformat("T", "microseconds") + "Z"
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def plain_json(kind: str, payload: Any) -> str:
    """A record as JSON, field by field (the encoder when none is installed)."""
    return orjson.dumps(_plain(payload)).decode()


class Events:
    """Append events inside the caller's write transaction; keep membership periods."""

    def __init__(
        self, orm_db: orm.Database, entities: dict[str, Any], dialect: Dialect
    ) -> None:
        self._db = orm_db
        self._event = entities["Event"]
        self._period = entities["MembershipPeriod"]
        self._dialect = dialect
        self.encode: Encoder = plain_json
        # PostgreSQL: NOTIFY listeners at commit (set when replicas LISTEN).
        self.notify = False
        self._local = threading.local()

    def append(self, kind: str, conversation_id: int | None, payload: Any) -> int:
        """Write one event in the current transaction; returns its id."""
        # PostgreSQL: the transaction's id before the event's (see the module).
        stamp = self._dialect.before_event(self._db, self.notify)
        event = self._event(
            conversation=conversation_id,
            kind=kind,
            data=self.encode(kind, payload),
            created_at=stamp,  # the database's clock: retention is judged by it
        )
        event.flush()
        self._local.written = True
        return int(event.id)

    def take_written(self) -> bool:
        """Whether this thread appended an event since it last asked."""
        written = getattr(self._local, "written", False)
        self._local.written = False
        return bool(written)

    def conversation_created(
        self, record: ConversationRecord, member_ids: Iterable[int]
    ) -> None:
        """A new conversation: every member's period opens with it."""
        event_id = self.append(CONVERSATION_CREATED, record.id, record)
        for user_id in member_ids:
            self._period(conversation=record.id, user=user_id, since_event=event_id)

    def message_posted(self, record: MessageRecord) -> None:
        """A new message."""
        self.append(MESSAGE_POSTED, record.conversation_id, record)

    def message_deleted(self, conversation_id: int, message_id: int) -> None:
        """A message deleted."""
        self.append(
            MESSAGE_DELETED,
            conversation_id,
            DeletedMessage(message_id, conversation_id),
        )

    def member_added(
        self, conversation_id: int, user_id: int, member: MemberRecord, by: str | None
    ) -> None:
        """A member added: their period opens with this event (they receive it)."""
        change = MemberChange(conversation_id, member, by)
        event_id = self.append(MEMBER_ADDED, conversation_id, change)
        self._period(conversation=conversation_id, user=user_id, since_event=event_id)

    def member_removed(
        self, conversation_id: int, user_id: int, member: MemberRecord, by: str | None
    ) -> None:
        """A member gone: their period closes with this event, their last one."""
        change = MemberChange(conversation_id, member, by)
        event_id = self.append(MEMBER_REMOVED, conversation_id, change)
        for period in orm.select(
            p
            for p in self._period
            if p.conversation.id == conversation_id
            and p.user.id == user_id
            and p.until_event is None
        ):
            period.until_event = event_id

    def owner_changed(self, conversation_id: int, owner: str | None) -> None:
        """The conversation's owner changed (None: nobody is left)."""
        self.append(OWNER_CHANGED, conversation_id, OwnerChange(conversation_id, owner))

    def token_revoked(self, token_id: int) -> None:
        """A token revoked: every stream it opened ends."""
        self.append(TOKEN_REVOKED, None, {"token_id": token_id})
