"""SQLite's tracking tables and the small helpers every file run uses."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from db.engines.base.migration import HISTORY_TABLE, LOG_TABLE, AppliedMigration
from db.engines.sqlite.connection import BEGIN_WRITE

TRACKING_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        checksum TEXT NOT NULL,
        applied_at TEXT NOT NULL,
        execution_ms REAL NOT NULL,
        dialect TEXT NOT NULL DEFAULT 'sqlite',
        how TEXT NOT NULL DEFAULT 'applied'
    )""",
    f"""CREATE TABLE IF NOT EXISTS {LOG_TABLE} (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        version INTEGER,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
    )""",
)
# Columns added after the first release; older history tables get them.
ADDED_COLUMNS = (
    ("dialect", "TEXT NOT NULL DEFAULT 'sqlite'"),
    ("how", "TEXT NOT NULL DEFAULT 'applied'"),
)
INSERT = (
    f"INSERT INTO {HISTORY_TABLE} "
    "(version, name, checksum, applied_at, execution_ms, dialect, how) "
    "VALUES (?, ?, ?, ?, ?, 'sqlite', ?)"
)


def has_table(con: sqlite3.Connection, name: str) -> bool:
    """Whether the file has a table called name."""
    row = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def read_history(con: sqlite3.Connection) -> dict[int, AppliedMigration]:
    """The history table's rows by version ({} when it does not exist)."""
    if not has_table(con, HISTORY_TABLE):
        return {}
    # An older history table has no 'how' column until the next run adds it.
    have = {row[1] for row in con.execute(f"PRAGMA table_info({HISTORY_TABLE})")}
    how = "how" if "how" in have else "'applied'"
    rows = con.execute(
        f"SELECT version, name, checksum, applied_at, execution_ms, {how} "
        f"FROM {HISTORY_TABLE}"
    )
    return {row[0]: AppliedMigration(*row) for row in rows}


@contextlib.contextmanager
def write(con: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT; ROLLBACK on any error."""
    con.execute(BEGIN_WRITE)
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
