"""The messaging schema: the search index beside the entities, ON DELETE rules."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from db.database import engine_for, open_database
from db.engines.sqlite import connection as seam
from db.target import DatabaseTarget
from tests.engines import execute, rows

NOW = "2026-01-01 00:00:00.000000"


def _seed(con: sqlite3.Connection) -> None:
    now = "2026-01-01 00:00:00.000000"
    con.execute("INSERT INTO users VALUES (1, 'ann', 'Ann', ?)", (now,))
    con.execute(
        "INSERT INTO conversations (id, title, created_by, created_at, "
        "last_message_at) VALUES (1, 't', 1, ?, ?)",
        (now, now),
    )
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


@pytest.fixture
def seeded(target: DatabaseTarget) -> DatabaseTarget:
    """This test's migrated database with ann, her conversation and one message."""
    for sql, params in SEED:
        execute(target, sql, params)
    return target


SEED: list[tuple[str, tuple[object, ...]]] = [
    (
        "INSERT INTO users (id, handle, display_name, created_at) VALUES (1, 'ann', 'Ann', ?)",
        (NOW,),
    ),
    (
        "INSERT INTO conversations (id, title, created_by, created_at, last_message_at) "
        "VALUES (1, 't', 1, ?, ?)",
        (NOW, NOW),
    ),
    (
        "INSERT INTO memberships (conversation_id, user_id, joined_at) VALUES (1, 1, ?)",
        (NOW,),
    ),
    (
        "INSERT INTO messages (id, conversation_id, author_id, body, created_at) "
        "VALUES (1, 1, 1, 'hello world', ?)",
        (NOW,),
    ),
]


def run(target: DatabaseTarget, sql: str, params: tuple[object, ...] = ()) -> None:
    """One statement with foreign keys enforced, committed at once.

    SQLite enforces them per connection, and tests.engines' connections do
    not ask to: seam.connect() does, as the service's connections do.
    """
    if target.dialect == "postgres":
        execute(target, sql, params)
        return
    con = seam.connect(target.path)  # type: ignore[union-attr]
    try:
        con.execute(sql, params)
        con.commit()
    finally:
        con.close()


def count(target: DatabaseTarget, sql: str) -> int:
    """The single number a COUNT query returns."""
    ((n,),) = rows(target, sql)
    return int(n)


def hits(target: DatabaseTarget, word: str) -> list[int]:
    """Ids of the messages the search index holds word for."""
    sql = "SELECT message_id FROM search_terms WHERE term = ? ORDER BY message_id"
    return [r[0] for r in rows(target, sql, (word,))]


def index(target: DatabaseTarget) -> None:
    """Start the service's database once: it indexes unindexed messages."""
    open_database(engine=engine_for(target)).close()


def test_fts5_and_tsvector_are_gone(seeded: DatabaseTarget) -> None:
    """0005 replaces the engines' own indexes (FTS5; body_tsv) with search_terms."""
    if seeded.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE name LIKE 'messages_fts%'"
    else:
        sql = (
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'messages' AND column_name = 'body_tsv'"
        )
    assert rows(seeded, sql) == []


def test_start_up_indexes_messages_written_before_the_index(
    seeded: DatabaseTarget,
) -> None:
    """Messages without terms (older than 0005) are indexed when the service opens."""
    assert hits(seeded, "hello") == []
    index(seeded)
    assert (hits(seeded, "hello"), hits(seeded, "world")) == ([1], [1])
    index(seeded)  # nothing left to do: nothing doubles
    assert count(seeded, "SELECT count(*) FROM search_terms") == 2
    run(seeded, "DELETE FROM messages WHERE id = 1")
    assert hits(seeded, "hello") == []


def test_user_with_history_cannot_be_deleted(seeded: DatabaseTarget) -> None:
    """users -> messages/conversations is NO ACTION: history is never erased by accident."""
    refused = (sqlite3.IntegrityError, psycopg2.IntegrityError)
    with pytest.raises(refused, match=r"(?i)foreign key"):
        run(seeded, "DELETE FROM users WHERE id = 1")
    assert count(seeded, "SELECT count(*) FROM users") == 1


def test_conversation_delete_cascades(seeded: DatabaseTarget) -> None:
    """Deleting a conversation removes its memberships, messages and their index."""
    index(seeded)
    assert hits(seeded, "hello") == [1]
    run(seeded, "DELETE FROM conversations WHERE id = 1")
    assert count(seeded, "SELECT count(*) FROM memberships") == 0
    assert count(seeded, "SELECT count(*) FROM messages") == 0
    assert hits(seeded, "hello") == []


def test_user_delete_cascades_to_tokens(seeded: DatabaseTarget) -> None:
    """A user without history takes their tokens and memberships along."""
    run(
        seeded,
        "INSERT INTO users (id, handle, display_name, created_at) VALUES (2, 'bob', 'Bob', ?)",
        (NOW,),
    )
    run(
        seeded,
        "INSERT INTO api_tokens (user_id, token_hash, created_at) VALUES (2, ?, ?)",
        (b"\x00", NOW),
    )
    run(
        seeded,
        "INSERT INTO memberships (conversation_id, user_id, joined_at) VALUES (1, 2, ?)",
        (NOW,),
    )
    run(seeded, "DELETE FROM users WHERE id = 2")
    assert count(seeded, "SELECT count(*) FROM api_tokens") == 0
    assert count(seeded, "SELECT count(*) FROM memberships WHERE user_id = 2") == 0


PAGE = (
    "SELECT m.id FROM messages m JOIN users u ON u.id = m.author_id "
    "WHERE m.conversation_id = 1 AND m.id < 1000000000 ORDER BY m.id DESC LIMIT 51"
)


def test_paging_query_uses_the_composite_index(seeded: DatabaseTarget) -> None:
    """Reading a conversation's latest messages walks (conversation_id, id), no sort.

    PostgreSQL plans a sequential scan for a table this small, so the plan
    is read with sequential scans off: the index must serve the order.
    """
    if seeded.dialect == "postgres":
        con = psycopg2.connect(seeded.url)  # type: ignore[union-attr]
        try:
            cur = con.cursor()
            cur.execute("SET enable_seqscan = off")
            cur.execute("EXPLAIN " + PAGE)
            plan = " ".join(r[0] for r in cur.fetchall())
        finally:
            con.close()
        assert "idx_messages__conversation_id_id" in plan
        assert "Sort" not in plan
        return
    plan = " ".join(str(r[3]) for r in rows(seeded, "EXPLAIN QUERY PLAN " + PAGE))
    assert "idx_messages__conversation_id_id" in plan
    assert "TEMP B-TREE" not in plan
