"""SQLite connections: the PRAGMAs every one gets, plain ones, maintenance.

Pony's connections get the PRAGMAs from an on_connect hook; the runner,
the schema check and maintenance open plain sqlite3 connections here.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from db.engines.sqlite import budget
from db.errors import StorageError

BUSY_TIMEOUT_MS = 5000
# Files beside the database that belong to it: SQLite's own, and ours.
MIGRATION_LOCK_SUFFIX = ".migrate.lock"
COMPANION_SUFFIXES = ("-wal", "-shm", "-journal", MIGRATION_LOCK_SUFFIX)
# How every writing transaction starts: IMMEDIATE takes SQLite's write lock
# at BEGIN (waiting up to busy_timeout), so a transaction never fails at its
# first write after having read a snapshot another writer made stale.
BEGIN_WRITE = "BEGIN IMMEDIATE"


def connection_pragmas(synchronous: str = "NORMAL") -> tuple[str, ...]:
    """The PRAGMAs every connection gets, in the order they must run."""
    return (
        # WAL is persistent; asking again on an existing WAL file is a no-op.
        "PRAGMA journal_mode = WAL",
        # Durable across application crashes; a power loss may drop the
        # last commits (FULL keeps them, at about a third of the speed).
        f"PRAGMA synchronous = {synchronous}",
        "PRAGMA foreign_keys = ON",
        # One writer at a time across processes: wait, don't fail.
        f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
        # Trim the -wal file back after a checkpoint instead of keeping its
        # high-water mark (Rails 8's value).
        "PRAGMA journal_size_limit = 67108864",
        "PRAGMA mmap_size = 134217728",
        # Pages per connection; Pony keeps one connection per thread.
        "PRAGMA cache_size = 2000",
        "PRAGMA temp_store = MEMORY",
    )


def apply_pragmas(con: sqlite3.Connection, synchronous: str = "NORMAL") -> None:
    """Run the connection PRAGMAs on a DB-API connection."""
    cur = con.cursor()
    for statement in connection_pragmas(synchronous):
        cur.execute(statement)
    cur.close()


def install_pragmas(orm_db: Any, synchronous: str = "NORMAL") -> None:
    """Register the PRAGMAs on a Pony Database; call before bind()."""

    # Keyword form: the positional one registers the hook for every provider.
    @orm_db.on_connect(provider="sqlite")
    def _pragmas(_db: Any, connection: sqlite3.Connection) -> None:
        apply_pragmas(connection, synchronous)
        # Pony decodes every TEXT value through a Python function (to replace
        # invalid UTF-8); plain str takes sqlite3's C path, about 1 us less
        # per value. Everything this service stores was bound as a Python
        # str, so it is valid UTF-8.
        connection.text_factory = str
        budget.attach(connection)  # searches' time budget


def connect(path: Path, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Open a plain connection in autocommit mode, PRAGMAs applied."""
    con = sqlite3.connect(
        path,
        isolation_level=None,
        timeout=BUSY_TIMEOUT_MS / 1000,
        check_same_thread=False,
    )
    apply_pragmas(con, synchronous)
    return con


def connect_read_only(path: Path) -> sqlite3.Connection:
    """Open the file for reading only (never created, never written)."""
    return sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000
    )


def read_pragmas(con: Any) -> dict[str, Any]:
    """Read back the PRAGMAs that matter, for tests and diagnostics."""
    names = (
        "journal_mode",
        "synchronous",
        "foreign_keys",
        "busy_timeout",
        "journal_size_limit",
        "mmap_size",
        "cache_size",
        "temp_store",
    )
    return {name: con.execute(f"PRAGMA {name}").fetchone()[0] for name in names}


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at path, or None when there is none.

    SQLite keeps writing to the file it opened even after that file was
    deleted or replaced (rm, mv, a restore done wrong): every write then
    goes to a file nobody will ever open again. Comparing this with the
    identity at start tells.
    """
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino)


def startup_maintenance(con: sqlite3.Connection) -> None:
    """Let SQLite gather the statistics a long-lived connection needs."""
    con.execute("PRAGMA optimize = 0x10002")


def shutdown_maintenance(path: Path) -> tuple[int, int, int]:
    """Optimize and checkpoint the WAL into the main file; returns the checkpoint row.

    StorageError when SQLite cannot (a full disk, a vanished file).
    """
    try:
        con = sqlite3.connect(
            path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        )
        try:
            con.execute("PRAGMA optimize")
            row = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return (int(row[0]), int(row[1]), int(row[2]))
        finally:
            con.close()
    except sqlite3.Error as ex:
        raise StorageError(f"{path}: {ex}") from ex
