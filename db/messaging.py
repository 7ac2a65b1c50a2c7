"""Users, tokens, conversations, messages and search: the messaging queries.

Like Store, every method runs its SQL on the current unit of work's
connection (db.session.connection): inside a writing request that is the
immediate db_session's transaction, in a reading one an autocommit
statement. No method loads an entity, so none needs require_orm_session();
the entities in db/entities.py define the schema and the mapping check.

Membership is part of every conversation query (a join or an EXISTS on the
memberships primary key), so a user who is not a member gets exactly what
a missing conversation gives: NotFoundError("no conversation N").
"""

from __future__ import annotations

import base64
import binascii
import logging
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pony import orm

from db import session
from db.dialects.sqlite import from_stored, to_stored
from db.errors import ConflictError, ForbiddenError, NotFoundError
from db.records import (
    Caller,
    ConversationPage,
    ConversationRecord,
    MemberRecord,
    MessagePage,
    MessageRecord,
    SearchHit,
    UserRecord,
)

log = logging.getLogger(__name__)

# A token's last_used_at is written at most this often: a write per read
# request would turn every GET into a writer queueing on the write lock.
TOUCH_INTERVAL_SECONDS = 60
# Around matched terms in a snippet: control characters, so that the HTTP
# layer can escape the text and only then turn these into markup.
SNIPPET_OPEN = "\x02"
SNIPPET_CLOSE = "\x03"
SNIPPET_TOKENS = 12
MAX_SEARCH_TERMS = 16


def _now() -> tuple[datetime, str]:
    now = datetime.now(UTC)
    return now, to_stored(now)


def fts_query(text: str) -> str | None:
    """User text as an FTS5 query of quoted terms, all required (None: no terms).

    Every whitespace-separated chunk becomes one FTS5 string ("..." with "
    doubled), so operators (AND, OR, NOT, NEAR), column filters, '*', '^',
    parentheses and quotes from users are searched as text, never parsed.
    Chunks without a letter or digit would be empty phrases and are dropped.
    """
    terms = ['"' + chunk.replace('"', '""') + '"' for chunk in search_terms(text)]
    return " ".join(terms[:MAX_SEARCH_TERMS]) or None


def search_terms(text: str) -> list[str]:
    """The words of text that search looks for (chunks with a letter or digit)."""
    return [chunk for chunk in text.split() if any(ch.isalnum() for ch in chunk)]


def encode_cursor(last_message_at: str, conversation_id: int) -> str:
    """An opaque cursor for the conversation listing."""
    raw = f"{last_message_at}|{conversation_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    """The (stored last_message_at, id) a cursor holds; ValueError when malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, ident = raw.partition("|")
        datetime.fromisoformat(stamp)
        conversation_id = int(ident)
        if not 0 < conversation_id < 2**63:  # SQLite's integer range
            raise ValueError(conversation_id)
        return stamp, conversation_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as ex:
        raise ValueError("malformed cursor") from ex


def _user(row: Any) -> UserRecord:
    return UserRecord(int(row[0]), row[1], row[2], from_stored(row[3]))


class Messaging:
    """The messaging queries; returns records only."""

    def __init__(self, orm_db: orm.Database) -> None:
        self._db = orm_db

    def _con(self) -> sqlite3.Connection:
        return session.connection(self._db)

    # users and tokens

    def create_user(self, handle: str, display_name: str) -> UserRecord:
        """Add a user; ConflictError when the handle is taken."""
        now, stored = _now()
        try:
            cur = self._con().execute(
                "INSERT INTO users (handle, display_name, created_at) VALUES (?, ?, ?)",
                (handle, display_name, stored),
            )
        except sqlite3.IntegrityError as ex:
            raise ConflictError(f"handle {handle!r} is taken") from ex
        return UserRecord(int(cur.lastrowid or 0), handle, display_name, now)

    def users_by_handle(self, handles: Iterable[str]) -> dict[str, UserRecord]:
        """The users with these handles (unknown handles are left out)."""
        wanted = sorted(set(handles))
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        rows = self._con().execute(
            "SELECT id, handle, display_name, created_at FROM users "
            f"WHERE handle IN ({marks})",
            wanted,
        )
        return {row[1]: _user(row) for row in rows}

    def create_token(self, handle: str, token_hash: bytes) -> int:
        """Store a token hash for the user; returns the token id."""
        con = self._con()
        row = con.execute("SELECT id FROM users WHERE handle = ?", (handle,)).fetchone()
        if row is None:
            raise NotFoundError(f"no user with handle {handle!r}")
        _, stored = _now()
        cur = con.execute(
            "INSERT INTO api_tokens (user_id, token_hash, created_at) VALUES (?, ?, ?)",
            (row[0], token_hash, stored),
        )
        return int(cur.lastrowid or 0)

    def revoke_token(self, token_id: int) -> None:
        """Revoke a token (again is fine); NotFoundError when it never existed."""
        _, stored = _now()
        revoked = (
            self._con()
            .execute(
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
                (stored, token_id),
            )
            .rowcount
        )
        if not revoked:
            raise NotFoundError(f"no token {token_id}")

    def caller_for_token(self, token_hash: bytes) -> Caller | None:
        """The user of an unrevoked token with this hash, or None.

        Runs before a writing request's transaction (read_only): the token
        is looked up without taking the write lock.
        """
        row = (
            session.connection(self._db, read_only=True)
            .execute(
                "SELECT t.id, t.token_hash, t.last_used_at, "
                "u.id, u.handle, u.display_name, u.created_at "
                "FROM api_tokens t JOIN users u ON u.id = t.user_id "
                "WHERE t.token_hash = ? AND t.revoked_at IS NULL",
                (token_hash,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return Caller(
            _user(row[3:]),
            int(row[0]),
            bytes(row[1]),
            from_stored(row[2]) if row[2] else None,
        )

    def touch_token(self, caller: Caller) -> None:
        """Record the token's use, at most once a minute; never fails the request."""
        now = datetime.now(UTC)
        if (
            caller.last_used_at is not None
            and (now - caller.last_used_at).total_seconds() < TOUCH_INTERVAL_SECONDS
        ):
            return
        try:
            self._con().execute(
                "UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                (to_stored(now), caller.token_id),
            )
        except sqlite3.OperationalError as ex:
            # Bookkeeping: a busy database must not turn a read into a 503.
            log.debug("last_used_at not recorded: %s", ex)

    # conversations and members

    def _require_member(self, user_id: int, conversation_id: int) -> None:
        row = (
            self._con()
            .execute(
                "SELECT 1 FROM memberships WHERE conversation_id = ? AND user_id = ?",
                (conversation_id, user_id),
            )
            .fetchone()
        )
        if row is None:
            raise NotFoundError(f"no conversation {conversation_id}")

    def create_conversation(
        self, creator: UserRecord, title: str, members: Iterable[UserRecord]
    ) -> ConversationRecord:
        """Start a conversation; the creator is always a member."""
        now, stored = _now()
        con = self._con()
        cur = con.execute(
            "INSERT INTO conversations (title, created_by, created_at, last_message_at) "
            "VALUES (?, ?, ?, ?)",
            (title, creator.id, stored, stored),
        )
        conversation_id = int(cur.lastrowid or 0)
        everyone = {creator.id: creator} | {m.id: m for m in members}
        con.executemany(
            "INSERT INTO memberships (conversation_id, user_id, joined_at) "
            "VALUES (?, ?, ?)",
            [(conversation_id, user_id, stored) for user_id in everyone],
        )
        return ConversationRecord(
            conversation_id,
            title,
            creator.handle,
            now,
            now,
            tuple(
                MemberRecord(u.handle, u.display_name, now)
                for u in sorted(everyone.values(), key=lambda u: u.handle)
            ),
        )

    def list_conversations(
        self, user_id: int, limit: int, cursor: str | None
    ) -> ConversationPage:
        """The user's conversations, most recent activity first.

        ValueError when the cursor is malformed.
        """
        sql = (
            "SELECT c.id, c.title, u.handle, c.created_at, c.last_message_at "
            "FROM memberships mb "
            "JOIN conversations c ON c.id = mb.conversation_id "
            "JOIN users u ON u.id = c.created_by "
            "WHERE mb.user_id = ? "
        )
        params: list[Any] = [user_id]
        if cursor is not None:
            sql += "AND (c.last_message_at, c.id) < (?, ?) "
            params.extend(decode_cursor(cursor))
        sql += "ORDER BY c.last_message_at DESC, c.id DESC LIMIT ?"
        params.append(limit + 1)
        rows = self._con().execute(sql, params).fetchall()
        items = [
            ConversationRecord(
                int(r[0]), r[1], r[2], from_stored(r[3]), from_stored(r[4])
            )
            for r in rows[:limit]
        ]
        last = rows[limit - 1] if len(rows) > limit else None
        return ConversationPage(
            items, encode_cursor(last[4], int(last[0])) if last else None
        )

    def get_conversation(
        self, user_id: int, conversation_id: int
    ) -> ConversationRecord:
        """One of the user's conversations with its members."""
        con = self._con()
        row = con.execute(
            "SELECT c.id, c.title, u.handle, c.created_at, c.last_message_at "
            "FROM conversations c "
            "JOIN memberships mb ON mb.conversation_id = c.id AND mb.user_id = ? "
            "JOIN users u ON u.id = c.created_by "
            "WHERE c.id = ?",
            (user_id, conversation_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no conversation {conversation_id}")
        members = tuple(
            MemberRecord(r[0], r[1], from_stored(r[2]))
            for r in con.execute(
                "SELECT u.handle, u.display_name, mb.joined_at FROM memberships mb "
                "JOIN users u ON u.id = mb.user_id WHERE mb.conversation_id = ? "
                "ORDER BY u.handle",
                (conversation_id,),
            )
        )
        return ConversationRecord(
            int(row[0]),
            row[1],
            row[2],
            from_stored(row[3]),
            from_stored(row[4]),
            members,
        )

    def add_member(
        self, user_id: int, conversation_id: int, handle: str
    ) -> tuple[MemberRecord, bool]:
        """Add handle to a conversation of the user's; returns it and whether new."""
        self._require_member(user_id, conversation_id)
        con = self._con()
        user = con.execute(
            "SELECT id, display_name FROM users WHERE handle = ?", (handle,)
        ).fetchone()
        if user is None:
            raise NotFoundError(f"no user with handle {handle!r}")
        _, stored = _now()
        added = con.execute(
            "INSERT OR IGNORE INTO memberships (conversation_id, user_id, joined_at) "
            "VALUES (?, ?, ?)",
            (conversation_id, user[0], stored),
        ).rowcount
        joined = con.execute(
            "SELECT joined_at FROM memberships WHERE conversation_id = ? AND user_id = ?",
            (conversation_id, user[0]),
        ).fetchone()[0]
        return MemberRecord(handle, user[1], from_stored(joined)), bool(added)

    def remove_member(self, user_id: int, conversation_id: int, handle: str) -> None:
        """Remove handle from a conversation of the user's (themselves included)."""
        self._require_member(user_id, conversation_id)
        removed = (
            self._con()
            .execute(
                "DELETE FROM memberships WHERE conversation_id = ? "
                "AND user_id = (SELECT id FROM users WHERE handle = ?)",
                (conversation_id, handle),
            )
            .rowcount
        )
        if not removed:
            raise NotFoundError(f"{handle!r} is not a member of this conversation")

    # messages

    def post_message(
        self, author: UserRecord, conversation_id: int, body: str
    ) -> MessageRecord:
        """Add a message to a conversation the author is a member of."""
        now, stored = _now()
        con = self._con()
        cur = con.execute(
            "INSERT INTO messages (conversation_id, author_id, body, created_at) "
            "SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM memberships "
            "WHERE conversation_id = ? AND user_id = ?)",
            (conversation_id, author.id, body, stored, conversation_id, author.id),
        )
        if not cur.rowcount:
            raise NotFoundError(f"no conversation {conversation_id}")
        con.execute(
            "UPDATE conversations SET last_message_at = ? WHERE id = ?",
            (stored, conversation_id),
        )
        return MessageRecord(
            int(cur.lastrowid or 0), conversation_id, author.handle, body, now
        )

    def list_messages(
        self,
        user_id: int,
        conversation_id: int,
        limit: int,
        *,
        before: int | None = None,
        after: int | None = None,
    ) -> MessagePage:
        """A page of messages: newest first, or oldest first when after is given."""
        self._require_member(user_id, conversation_id)
        if after is not None:
            condition, order, cursor = "m.id > ?", "ASC", after
        else:
            condition, order = "m.id < ?", "DESC"
            cursor = before if before is not None else 2**63 - 1
        rows = (
            self._con()
            .execute(
                "SELECT m.id, u.handle, m.body, m.created_at FROM messages m "
                "JOIN users u ON u.id = m.author_id "
                f"WHERE m.conversation_id = ? AND {condition} "
                f"ORDER BY m.id {order} LIMIT ?",
                (conversation_id, cursor, limit + 1),
            )
            .fetchall()
        )
        items = [
            MessageRecord(r[0], conversation_id, r[1], r[2], from_stored(r[3]))
            for r in rows[:limit]
        ]
        return MessagePage(items, items[-1].id if len(rows) > limit else None)

    def delete_message(
        self, user_id: int, conversation_id: int, message_id: int
    ) -> None:
        """Delete the user's own message; ForbiddenError for someone else's."""
        self._require_member(user_id, conversation_id)
        con = self._con()
        row = con.execute(
            "SELECT author_id FROM messages WHERE id = ? AND conversation_id = ?",
            (message_id, conversation_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no message {message_id} in this conversation")
        if row[0] != user_id:
            raise ForbiddenError("only the author may delete a message")
        con.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def search(self, user_id: int, text: str, limit: int) -> list[SearchHit]:
        """Messages of the user's conversations matching text, best first."""
        query = fts_query(text)
        if query is None:
            return []
        rows = self._con().execute(
            "SELECT m.id, m.conversation_id, u.handle, m.created_at, "
            "snippet(messages_fts, 0, ?, ?, '…', ?) "
            "FROM messages_fts "
            "JOIN messages m ON m.id = messages_fts.rowid "
            "JOIN memberships mb ON mb.conversation_id = m.conversation_id "
            "AND mb.user_id = ? "
            "JOIN users u ON u.id = m.author_id "
            "WHERE messages_fts MATCH ? "
            "ORDER BY messages_fts.rank LIMIT ?",
            (SNIPPET_OPEN, SNIPPET_CLOSE, SNIPPET_TOKENS, user_id, query, limit),
        )
        return [
            SearchHit(int(r[0]), int(r[1]), r[2], from_stored(r[3]), r[4]) for r in rows
        ]
