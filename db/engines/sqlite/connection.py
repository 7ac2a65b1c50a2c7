"""The SQLite seam: connections, PRAGMAs, locks, maintenance (backups: sqlite_backup).

The rest of db/ asks this module (and sqlite_schema for introspection)
rather than running sqlite3 PRAGMAs itself, so a second engine is a
sibling module, not a change to the callers.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from db.errors import (
    BusyError,
    ConflictError,
    DatabaseError,
    StorageError,
    StorageFullError,
)

log = logging.getLogger(__name__)


BUSY_TIMEOUT_MS = 5000
# Files beside the database that belong to it: SQLite's own, and ours.
MIGRATION_LOCK_SUFFIX = ".migrate.lock"
COMPANION_SUFFIXES = ("-wal", "-shm", "-journal", MIGRATION_LOCK_SUFFIX)
# How every writing transaction starts: IMMEDIATE takes SQLite's write lock
# at BEGIN (waiting up to busy_timeout), so a transaction never fails at its
# first write after having read a snapshot another writer made stale.
BEGIN_WRITE = "BEGIN IMMEDIATE"


def to_stored(moment: datetime) -> str:
    """An aware datetime as the naive UTC text Pony stores on SQLite."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # Positional arguments and slicing off "+00:00": half the time of
    # replace(tzinfo=None).isoformat(sep=..., timespec=...).
    return moment.isoformat(" ", "microseconds")[:-6]


def from_stored(stored: str) -> datetime:
    """Stored timestamp text (naive UTC, as Pony writes it) as an aware datetime."""
    try:
        moment = datetime.fromisoformat(stored + "+00:00")
    except ValueError:  # not written by us: an offset or a 'Z' of its own
        moment = datetime.fromisoformat(stored)
    if moment.tzinfo is None:  # a bare date ignores the appended offset
        return moment.replace(tzinfo=UTC)
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


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


@contextlib.contextmanager
def migration_lock(path: Path, timeout: float = 120.0) -> Iterator[None]:
    """Hold an exclusive OS lock beside the database file for a migration run.

    flock() belongs to the open file description, so the kernel drops it when
    the holder dies: a crashed migrator can never leave a stale lock behind.
    """
    lock_path = path.with_name(path.name + MIGRATION_LOCK_SUFFIX)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as ex:
                if ex.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"another process held {lock_path} for over {timeout:.0f} s"
                    ) from ex
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        yield
    finally:
        os.close(fd)  # releases the lock


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


# What the sqlite3 module raises, for code that must not import it.
ERROR = sqlite3.Error


def classify(error: sqlite3.Error) -> type[DatabaseError] | None:
    """What an SQLite error means for the caller, from its result code.

    Busy and locked: another writer held on past busy_timeout. Full: no
    space for the write. I/O errors, a read-only or vanished file, a
    corrupt one: the machine failed, not the request. Constraints: the
    change conflicts with stored data. None: a programming error.
    """
    name = getattr(error, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or (
        not name and "database is locked" in str(error)
    ):
        return BusyError
    if name == "SQLITE_FULL":
        return StorageFullError
    if name.startswith(
        (
            "SQLITE_IOERR",
            "SQLITE_READONLY",
            "SQLITE_CANTOPEN",
            "SQLITE_CORRUPT",
            "SQLITE_NOTADB",
            "SQLITE_PROTOCOL",
        )
    ):
        return StorageError
    if name.startswith("SQLITE_CONSTRAINT") or isinstance(
        error, sqlite3.IntegrityError
    ):
        return ConflictError
    return None
