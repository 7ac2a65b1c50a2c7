"""Database fixtures for the benchmark: pre-fill, migration folders, checks."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path
from typing import Any

from bench.baseline import utc_now

REPO = Path(__file__).resolve().parent.parent
MIGRATIONS = REPO / "schema_migrations"
KEYS = 10_000
VALUE = "x" * 64

# The messaging workloads: one user whose token wrk sends, one conversation
# with MESSAGES messages already in it (the same rows in both databases).
BENCH_TOKEN = "sft_bench-token-0123456789abcdefghijklmnopqrstuvw"  # noqa: S105
CONVERSATION_ID = 1
MESSAGES = 1_000


def key_name(i: int) -> str:
    """Return the i-th pre-filled key; the wrk scripts build the same names."""
    return f"key-{i:05d}"


# (table, columns, rows) in foreign-key order; every engine gets these rows.
Rows = list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]


def metadata_rows(now: str, count: int = KEYS) -> Rows:
    """The pre-filled keys of app_metadata."""
    return [
        (
            "app_metadata",
            ("key", "value", "updated_at"),
            [(key_name(i), VALUE, now) for i in range(count)],
        )
    ]


def messaging_rows(now: str, messages: int = MESSAGES) -> Rows:
    """The bench user, its token hash, a conversation, its membership and messages."""
    digest = hashlib.sha256(BENCH_TOKEN.encode()).digest()
    return [
        (
            "users",
            ("id", "handle", "display_name", "created_at"),
            [(1, "bench", "Bench", now)],
        ),
        (
            "api_tokens",
            ("user_id", "token_hash", "created_at", "last_used_at"),
            [(1, digest, now, None)],
        ),
        (
            "conversations",
            ("id", "title", "created_by", "owner_id", "created_at", "last_message_at"),
            [(CONVERSATION_ID, "bench", 1, 1, now, now)],
        ),
        (
            "memberships",
            ("conversation_id", "user_id", "joined_at"),
            [(CONVERSATION_ID, 1, now)],
        ),
        (
            "messages",
            ("conversation_id", "author_id", "body", "created_at"),
            [
                (CONVERSATION_ID, 1, f"message {i} with a few words of text", now)
                for i in range(messages)
            ],
        ),
    ]


def _insert_sqlite(path: Path, rows: Rows) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for table, columns, values in rows:
            marks = ", ".join("?" for _ in columns)
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values
            )
        conn.execute("COMMIT")
        # Leave no WAL behind so every stack starts from the same file state.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def prefill(path: Path, count: int = KEYS) -> None:
    """Insert count keys straight into app_metadata of an existing schema."""
    _insert_sqlite(path, metadata_rows(utc_now(), count))


def prefill_messaging(path: Path, messages: int = MESSAGES) -> None:
    """Insert the bench user, its token hash, a conversation and its messages."""
    _insert_sqlite(path, messaging_rows(utc_now(), messages))


def table_shape(
    path: Path, table: str = "app_metadata"
) -> list[tuple[str, str, int, int]]:
    """Return (name, type, notnull, pk) for each column of table."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    finally:
        conn.close()
    return [(r[1], r[2].upper(), r[3], r[5]) for r in rows]


def first_migration() -> Path | None:
    """Return the repository's 0001 migration for SQLite (shared or .sqlite.sql half)."""
    found = sorted(
        p for p in MIGRATIONS.glob("0001_*.sql") if not p.name.endswith(".postgres.sql")
    )
    return found[0] if found else None


def _file_name_pattern() -> tuple[str, str]:
    """Guess the repository's migration naming: (separator, suffix)."""
    first = first_migration()
    if first is None:
        return "_", ".sql"
    match = re.match(r"^0001(\W|_)", first.name)
    return (match.group(1) if match else "_"), ".sql"


def make_migrations(folder: Path, count: int) -> list[str]:
    """Write 0001 from the repo plus count-1 one-table files into folder.

    Returns the SQL of every file, in order, for the executescript comparison.
    """
    first = first_migration()
    if first is None:
        raise RuntimeError(f"no 0001_*.sql in {MIGRATIONS}")
    sep, suffix = _file_name_pattern()
    folder.mkdir(parents=True, exist_ok=True)
    scripts = [first.read_text()]
    # As one shared file: a lone .sqlite.sql half, without its PostgreSQL
    # half, is refused; the timings are SQLite's.
    shared = first.name.removesuffix(".sqlite.sql").removesuffix(".sql") + ".sql"
    (folder / shared).write_text(scripts[0])
    for n in range(2, count + 1):
        sql = f"CREATE TABLE t{n:04d} (id INTEGER PRIMARY KEY);\n"
        (folder / f"{n:04d}{sep}t{n:04d}{suffix}").write_text(sql)
        scripts.append(sql)
    return scripts


def pragma_drift() -> list[str]:
    """Compare the baseline's pragmas with the service's; return differences."""
    from bench.baseline_schema import PRAGMAS

    try:
        from db.engines.sqlite.connection import connection_pragmas
    except ImportError:
        return [
            "could not import db.engines.sqlite.connection.connection_pragmas to compare pragmas"
        ]

    def norm(items: tuple[str, ...]) -> list[str]:
        return [" ".join(p.replace("=", " = ").split()).lower() for p in items]

    theirs, ours = norm(tuple(connection_pragmas())), norm(PRAGMAS)
    if theirs == ours:
        return []
    return [f"pragmas differ: service {theirs} vs baseline {ours}"]
