"""What an sqlite3 error means for the caller, from its result code."""

from __future__ import annotations

import sqlite3

from db.errors import (
    BusyError,
    ConflictError,
    DatabaseError,
    StorageError,
    StorageFullError,
)

# What the sqlite3 module raises, for code that must not import it.
ERROR = sqlite3.Error


def is_driver_error(ex: BaseException) -> bool:
    """Whether ex is one of sqlite3's own exceptions."""
    return isinstance(ex, sqlite3.Error)


def classify(error: BaseException) -> type[DatabaseError] | None:
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
