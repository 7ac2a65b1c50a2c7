"""What the domain code asks of SQLite: FTS5 search, timestamps as stored text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from db.engines.base.operations import (
    SNIPPET_CLOSE,
    SNIPPET_OPEN,
    SNIPPET_WORDS,
    Row,
    parse_timestamp,
    timestamp_text,
)


def fts_query(terms: list[str]) -> str:
    """Terms as an FTS5 query of quoted strings, all required.

    Each term becomes one FTS5 string ("..." with " doubled), so operators
    (AND, OR, NOT, NEAR), column filters, '*', '^', parentheses and quotes
    from users are searched as text, never parsed.
    """
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


def timestamp(raw: Any) -> datetime:
    """A raw timestamp column (the text Pony stores) as an aware UTC datetime."""
    if isinstance(raw, str):
        return parse_timestamp(raw)
    moment: datetime = raw
    return (
        moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    )


class SqliteDialect:
    """What the domain code asks of SQLite."""

    name: Literal["sqlite"] = "sqlite"
    # Writers already take turns (BEGIN IMMEDIATE): a plain read is current.
    guard_lock: str = ""

    def lock_key(self, orm_db: Any, *key: object) -> datetime:
        """Nothing to lock (BEGIN IMMEDIATE made writers take turns); the time."""
        return datetime.now(UTC).replace(tzinfo=None)

    def now(self, orm_db: Any) -> datetime:
        """The machine's clock (naive UTC): every process on the file shares it."""
        return datetime.now(UTC).replace(tzinfo=None)

    def before_event(self, orm_db: Any, notify: bool) -> datetime:
        """The machine's clock: ids follow commit order; readers watch data_version."""
        return self.now(orm_db)

    def search(
        self, orm_db: Any, user_id: int, terms: list[str], limit: int
    ) -> list[Row]:
        """FTS5 MATCH over messages_fts, joined to the user's memberships, by rank."""
        rows = orm_db.select(
            "SELECT m.id, m.conversation_id, u.handle, m.created_at, "
            "snippet(messages_fts, 0, $open_, $close, '…', $words) "
            "FROM messages_fts "
            "JOIN messages m ON m.id = messages_fts.rowid "
            "JOIN memberships mb ON mb.conversation_id = m.conversation_id "
            "AND mb.user_id = $user_id "
            "JOIN users u ON u.id = m.author_id "
            "WHERE messages_fts MATCH $query "
            "ORDER BY messages_fts.rank LIMIT $limit",
            {
                "open_": SNIPPET_OPEN,
                "close": SNIPPET_CLOSE,
                "words": SNIPPET_WORDS,
                "user_id": user_id,
                "query": fts_query(terms),
                "limit": limit,
            },
        )
        return [(r[0], r[1], r[2], parse_timestamp(r[3]), r[4]) for r in rows]

    # Staticmethods: called per raw timestamp, so no bound-method lookup.
    timestamp = staticmethod(timestamp)

    @staticmethod
    def timestamp_param(moment: datetime) -> str:
        """The text the column holds for moment: SQLite compares it as text."""
        return timestamp_text(moment)
