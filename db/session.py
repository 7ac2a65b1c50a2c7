"""Units of work: a Pony db_session entered and left by the caller.

The HTTP middleware enters one per request and leaves it when the response
is ready; errors Pony raises on commit are translated to db.errors here so
callers above db/ never see Pony's exception types.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from pony import orm
from pony.orm import dbapiprovider

from db.errors import BusyError, ConflictError

# db_session objects only hold configuration (state is thread-local), so
# two shared instances serve every thread and avoid per-request set-up.
_READ = orm.db_session
_WRITE = orm.db_session(immediate=True)


class RequestFailedError(Exception):
    """Passed to db_session.__exit__ so that it rolls back."""


_FAILED = RequestFailedError("request failed")


def translate(ex: BaseException) -> BaseException:
    """Map a Pony/SQLite exception to a db.errors one (or return it unchanged)."""
    text = str(ex)
    if "database is locked" in text or "database table is locked" in text:
        return BusyError("the database stayed locked by another writer")
    if isinstance(
        ex,
        orm.TransactionIntegrityError
        | dbapiprovider.IntegrityError
        | sqlite3.IntegrityError,
    ):
        return ConflictError("the change conflicts with stored data")
    return ex


_local = threading.local()


class Session:
    """One unit of work per request; enter() now, finish(succeeded) exactly once later.

    A writing unit enters Pony's db_session(immediate=True) at once. A reading
    unit enters Pony's db_session only when a query needs one (entity
    queries call require_orm_session()); single-statement reads run in
    autocommit on the thread's pooled connection, which is what Pony does
    for reads inside a session anyway, minus its bookkeeping.
    """

    __slots__ = ("_context", "_entered")

    def __init__(self, *, write: bool) -> None:
        self._context: Any = _WRITE if write else None
        self._entered = False

    def enter(self) -> None:
        """Start the unit on the calling thread."""
        if self._context is not None:
            self._enter_orm(self._context)
        _local.current = self

    def _enter_orm(self, context: Any) -> None:
        try:
            context.__enter__()
        except Exception as ex:
            raise translate(ex) from ex
        self._context = context
        self._entered = True

    def finish(self, succeeded: bool) -> None:
        """Commit when succeeded, roll back otherwise; the unit ends either way."""
        _local.current = None
        if not self._entered:
            return
        self._entered = False
        if not succeeded:
            self._context.__exit__(RequestFailedError, _FAILED, None)
            return
        try:
            self._context.__exit__(None, None, None)
        except Exception as ex:
            # Pony rolled back and cleared the thread's state before raising.
            translated = translate(ex)
            if translated is ex:
                raise
            raise translated from ex


def require_orm_session() -> None:
    """Enter Pony's db_session for a reading unit that is about to need it."""
    unit: Session | None = getattr(_local, "current", None)
    if unit is not None and not unit._entered:
        unit._enter_orm(_READ)


def connection(orm_db: orm.Database) -> sqlite3.Connection:
    """The connection for the next statement of the current unit of work.

    Inside Pony's db_session: the session's connection in its mode (BEGIN
    IMMEDIATE under the write lock for writing sessions). Otherwise the
    thread's pooled connection in autocommit mode, opened with the
    on_connect PRAGMAs like any Pony connection.
    """
    if orm.core.local.db_session is not None:
        con: sqlite3.Connection = (
            orm_db._get_cache().prepare_connection_for_query_execution()
        )
        return con
    pooled, is_new = orm_db.provider.connect()
    if is_new:
        orm_db.call_on_connect(pooled)
    return pooled  # type: ignore[no-any-return]


def in_session() -> bool:
    """True while the calling thread is inside a db_session (leak detector)."""
    return orm.core.local.db_session is not None


# What Pony raises when SQLite refuses: the HTTP layer registers one handler
# for these and answers with whatever translate() makes of them.
DRIVER_ERRORS: tuple[type[Exception], ...] = (
    orm.core.TransactionError,
    dbapiprovider.DBException,
    sqlite3.Error,  # statements the store runs on the session's connection
)
