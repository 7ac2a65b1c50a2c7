"""The messaging schema: FTS5 beside the entities, ON DELETE rules."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.dialects import sqlite as seam
from db.dialects import sqlite_schema


def _seed(con: sqlite3.Connection) -> None:
    now = "2026-01-01 00:00:00.000000"
    con.execute("INSERT INTO users VALUES (1, 'ann', 'Ann', ?)", (now,))
    con.execute("INSERT INTO conversations VALUES (1, 't', 1, ?, ?)", (now, now))
    con.execute("INSERT INTO memberships VALUES (1, 1, ?)", (now,))
    con.execute("INSERT INTO messages VALUES (1, 1, 1, 'hello world', ?)", (now,))


@pytest.fixture
def con(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a migrated copy, foreign keys on; closed afterwards."""
    connection = seam.connect(db_path)
    try:
        _seed(connection)
        yield connection
    finally:
        connection.close()


def test_fts_tables_exist_but_are_not_compared(con: sqlite3.Connection) -> None:
    """The FTS5 table and its shadow tables are left out of the compared schema."""
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    assert {"messages_fts", "messages_fts_data", "messages_fts_idx"} <= names
    assert sqlite_schema.virtual_tables(con) >= {"messages_fts", "messages_fts_data"}
    schema = sqlite_schema.read_schema(con)
    assert "messages" in schema
    assert not any(key.startswith("messages_fts") for key in schema)
    objects = sqlite_schema.schema_objects(con)
    assert not any(
        o.name.startswith("messages_fts") and o.type == "table" for o in objects
    )
    triggers = {o.name for o in objects if o.type == "trigger"}
    assert triggers == {
        "messages_fts_insert",
        "messages_fts_delete",
        "messages_fts_update",
    }


def test_fts_follows_inserts_updates_and_deletes(con: sqlite3.Connection) -> None:
    """The triggers keep the index in step with messages."""

    def hits(word: str) -> list[int]:
        return [
            r[0]
            for r in con.execute(
                "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?", (word,)
            )
        ]

    assert hits("hello") == [1]
    con.execute("UPDATE messages SET body = 'goodbye' WHERE id = 1")
    assert (hits("hello"), hits("goodbye")) == ([], [1])
    con.execute("DELETE FROM messages WHERE id = 1")
    assert hits("goodbye") == []
    assert con.execute(
        "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')"
    )


def test_user_with_history_cannot_be_deleted(con: sqlite3.Connection) -> None:
    """users -> messages/conversations is NO ACTION: history is never erased by accident."""
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        con.execute("DELETE FROM users WHERE id = 1")


def test_conversation_delete_cascades(con: sqlite3.Connection) -> None:
    """Deleting a conversation removes its memberships, messages and their index."""
    con.execute("DELETE FROM conversations WHERE id = 1")
    assert con.execute("SELECT count(*) FROM memberships").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    hits = con.execute(
        "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'hello'"
    )
    assert hits.fetchone()[0] == 0


def test_user_delete_cascades_to_tokens(con: sqlite3.Connection) -> None:
    """A user without history takes their tokens and memberships along."""
    con.execute("INSERT INTO users VALUES (2, 'bob', 'Bob', '2026-01-01 00:00:00')")
    con.execute(
        "INSERT INTO api_tokens (user_id, token_hash, created_at) VALUES (2, x'00', '2026-01-01')"
    )
    con.execute("INSERT INTO memberships VALUES (1, 2, '2026-01-01')")
    con.execute("DELETE FROM users WHERE id = 2")
    assert con.execute("SELECT count(*) FROM api_tokens").fetchone()[0] == 0
    assert (
        con.execute("SELECT count(*) FROM memberships WHERE user_id = 2").fetchone()[0]
        == 0
    )


def test_paging_query_uses_the_composite_index(con: sqlite3.Connection) -> None:
    """Reading a conversation's latest messages walks (conversation_id, id)."""
    plan = " ".join(
        str(r[3])
        for r in con.execute(
            "EXPLAIN QUERY PLAN SELECT m.id FROM messages m JOIN users u ON u.id = m.author_id "
            "WHERE m.conversation_id = ? AND m.id < ? ORDER BY m.id DESC LIMIT 51",
            (1, 10**9),
        )
    )
    assert "idx_messages__conversation_id_id" in plan
    assert "TEMP B-TREE" not in plan
