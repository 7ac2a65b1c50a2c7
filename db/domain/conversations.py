"""Conversations, through the Conversation and Membership entities.

Membership is part of every query: a user who is not a member of a
conversation gets exactly what a missing one gives,
NotFoundError("no conversation N"), so nothing reveals that it exists.

Every write inside a conversation (a post, a deletion, a change of its
members or owner) first takes the conversation's lock, then checks the
caller's membership and ownership (`lock_as_member`): a removal or a
hand-over answered 2xx is final, and no write that depended on the
state before it commits after it. Members and owners: db/domain/members.py.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pony import orm

from db.domain.events import Events
from db.domain.records import (
    ConversationPage,
    ConversationRecord,
    MemberRecord,
    UserRecord,
)
from db.domain.timestamps import aware
from db.engines.base.operations import Dialect, parse_timestamp, timestamp_text
from db.errors import NotFoundError

# A conversation cursor holds an id, which must fit SQL's 64-bit integer.
MAX_ID = 2**63 - 1


def encode_cursor(last_message_at: datetime, conversation_id: int) -> str:
    """An opaque cursor for the conversation listing."""
    raw = f"{timestamp_text(last_message_at)}|{conversation_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (last_message_at, id) a cursor holds; ValueError when malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, ident = raw.partition("|")
        moment = parse_timestamp(stamp)
        conversation_id = int(ident)
    # OverflowError: a stamp at the edge of the date range whose offset
    # moves it past the edge in UTC ("0001-01-01T00:00:00+01:00").
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError) as ex:
        raise ValueError("malformed cursor") from ex
    if not 0 <= conversation_id <= MAX_ID:
        raise ValueError("malformed cursor")
    return moment, conversation_id


class Conversations:
    """Start, list and read conversations; lock one for a write in it."""

    def __init__(
        self,
        orm_db: orm.Database,
        entities: dict[str, Any],
        dialect: Dialect,
        events: Events,
    ) -> None:
        self._db = orm_db
        self._conversation = entities["Conversation"]
        self._membership = entities["Membership"]
        self._dialect = dialect
        self._events = events

    def require_member(self, user_id: int, conversation_id: int) -> None:
        """NotFoundError unless user_id is a member of the conversation (reads).

        A raw existence query (db.select) on the memberships primary key:
        Membership.exists() loads the whole entity, measured at five times
        the cost. A write checks with lock_as_member() instead.
        """
        found = self._db.select(
            "SELECT 1 FROM memberships "
            "WHERE conversation_id = $conversation_id AND user_id = $user_id",
            {"conversation_id": conversation_id, "user_id": user_id},
        )
        if not found:
            raise NotFoundError(f"no conversation {conversation_id}")

    def lock(self, conversation_id: int) -> datetime:
        """Take the conversation's write lock (held until the transaction ends).

        Every writer inside one conversation takes it before it checks
        anything, so checks and writes of two writers never interleave.
        SQLite: nothing to take, BEGIN IMMEDIATE serialised them already;
        PostgreSQL: a transaction-level advisory lock on the id. Returns
        the database's clock once the lock is held (naive UTC): the stamp
        for what the holder writes.
        """
        return self._dialect.lock_key(self._db, "conversations", conversation_id)

    def lock_as_member(self, user_id: int, conversation_id: int) -> datetime:
        """Lock the conversation, check user_id is a member; the stamp to write with.

        NotFoundError when the user is not a member (or there is no such
        conversation). Call inside the write transaction, before the write.
        The stamp (naive UTC) is the database's clock once the lock is
        held, and never earlier than the conversation's last activity: its
        last_message_at never moves back, even if the clock does.
        """
        held = self.lock(conversation_id)
        found = self._db.select(
            "SELECT c.last_message_at FROM memberships mb "
            "JOIN conversations c ON c.id = mb.conversation_id "
            "WHERE mb.conversation_id = $conversation_id AND mb.user_id = $user_id",
            {"conversation_id": conversation_id, "user_id": user_id},
        )
        if not found:
            raise NotFoundError(f"no conversation {conversation_id}")
        latest = self._dialect.timestamp(found[0]).replace(tzinfo=None)
        return max(held, latest)

    def create(
        self, creator: UserRecord, title: str, members: Iterable[UserRecord]
    ) -> ConversationRecord:
        """Start a conversation; the creator is a member and its owner."""
        stamp = self._dialect.now(self._db)
        conversation = self._conversation(
            title=title,
            created_by=creator.id,
            owner=creator.id,
            created_at=stamp,
            last_message_at=stamp,
        )
        everyone = {creator.id: creator} | {m.id: m for m in members}
        for user_id in everyone:
            self._membership(conversation=conversation, user=user_id, joined_at=stamp)
        conversation.flush()
        moment = aware(stamp)
        record = ConversationRecord(
            conversation.id,
            title,
            creator.handle,
            creator.handle,
            moment,
            moment,
            tuple(
                MemberRecord(u.handle, u.display_name, moment)
                for u in sorted(everyone.values(), key=lambda u: u.handle)
            ),
        )
        self._events.conversation_created(record, everyone)
        return record

    def page(self, user_id: int, limit: int, cursor: str | None) -> ConversationPage:
        """The user's conversations, most recent activity first.

        A read-only page, so raw rows (db.select), not entities: loading
        an entity per row costs Pony several times the query. ValueError
        when the cursor is malformed.
        """
        after = ""
        stamp, last_id = None, 0
        if cursor is not None:
            moment, last_id = decode_cursor(cursor)
            stamp = self._dialect.timestamp_param(moment)
            after = "AND (c.last_message_at, c.id) < ($stamp, $last_id) "
        n = limit + 1
        rows = self._db.select(
            "SELECT c.id, c.title, u.handle, o.handle, c.created_at, "
            "c.last_message_at "
            "FROM memberships mb "
            "JOIN conversations c ON c.id = mb.conversation_id "
            "JOIN users u ON u.id = c.created_by "
            "LEFT JOIN users o ON o.id = c.owner_id "
            f"WHERE mb.user_id = $user_id {after}"
            "ORDER BY c.last_message_at DESC, c.id DESC LIMIT $n",
            {"user_id": user_id, "stamp": stamp, "last_id": last_id, "n": n},
        )
        timestamp = self._dialect.timestamp
        items = [
            ConversationRecord(r[0], r[1], r[2], r[3], timestamp(r[4]), timestamp(r[5]))
            for r in rows[:limit]
        ]
        last = rows[limit - 1] if len(rows) > limit else None
        return ConversationPage(
            items,
            encode_cursor(timestamp(last[5]), last[0]) if last is not None else None,
        )

    def get(self, user_id: int, conversation_id: int) -> ConversationRecord:
        """One of the user's conversations with its members."""
        self.require_member(user_id, conversation_id)
        return self.record(conversation_id)

    def record(self, conversation_id: int) -> ConversationRecord:
        """The conversation with its members (NotFoundError when there is none)."""
        conversation = self._conversation.get(id=conversation_id)
        if conversation is None:
            raise NotFoundError(f"no conversation {conversation_id}")
        members = orm.select(
            (mb.user.handle, mb.user.display_name, mb.joined_at)
            for mb in self._membership
            if mb.conversation == conversation
        ).order_by(1)
        owner = conversation.owner
        return ConversationRecord(
            conversation.id,
            conversation.title,
            conversation.created_by.handle,
            owner.handle if owner is not None else None,
            aware(conversation.created_at),
            aware(conversation.last_message_at),
            tuple(MemberRecord(h, d, aware(j)) for h, d, j in members),
        )
