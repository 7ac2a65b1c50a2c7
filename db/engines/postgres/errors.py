"""What a psycopg2 error means for the caller, from its SQLSTATE.

Nothing here imports psycopg2: an error of it can exist only once it is
loaded.
"""

from __future__ import annotations

from db.errors import (
    BusyError,
    ConflictError,
    DatabaseError,
    StorageError,
    StorageFullError,
)

# SQLSTATE codes (https://www.postgresql.org/docs/current/errcodes-appendix.html)
_BUSY = frozenset(
    {
        "55P03",  # lock_not_available: lock_timeout passed
        "57014",  # query_canceled: statement_timeout passed
        "40001",  # serialization_failure: retry the transaction
        "40P01",  # deadlock_detected: retry the transaction
    }
)


def classify(error: BaseException) -> type[DatabaseError] | None:
    """What a psycopg2 error means for the caller, from its SQLSTATE.

    Integrity violations (class 23): a conflict with stored data. Lock and
    statement timeouts, serialization failures and deadlocks: busy, retry.
    Disk full: full. Insufficient resources, system and I/O errors, a lost
    or refused connection, a server shutting down: the machine failed.
    """
    code = getattr(error, "pgcode", None) or ""
    if code.startswith("23"):
        return ConflictError
    if code in _BUSY:
        return BusyError
    if code == "53100":
        return StorageFullError
    if code.startswith(("53", "58", "08", "57P", "XX")):
        return StorageError
    if not code and type(error).__name__ in ("OperationalError", "InterfaceError"):
        return StorageError  # no SQLSTATE: the connection itself failed
    return None


def is_driver_error(ex: BaseException) -> bool:
    """Whether ex is one of psycopg2's exceptions."""
    return type(ex).__module__.startswith("psycopg2") and isinstance(ex, Exception)
