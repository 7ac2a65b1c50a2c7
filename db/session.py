"""Units of work: one transaction per request, entered and left by the caller.

The HTTP middleware enters one per request and leaves it when the response
is ready; errors SQLite or Pony raise on commit are translated to db.errors
here so callers above db/ never see driver or Pony exception types.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any, NoReturn

from pony import orm
from pony.orm import dbapiprovider

from db.dialects import sqlite
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

    Nothing happens until a statement needs the database. Then:

    - a reading unit runs each statement in autocommit on the thread's pooled
      connection (what Pony does for reads inside a db_session, minus its
      bookkeeping);
    - a writing unit takes the process's write lock (Pony's own, bounded by
      db.sqlite.bound_write_lock), runs BEGIN IMMEDIATE on the pooled
      connection and keeps that transaction until finish() commits it, or
      rolls it back when the request failed.

    Entity code calls require_orm_session() first: that enters Pony's
    db_session (immediate for a writing unit). If the writing unit already
    began its transaction, Pony's session adopts it (connection, transaction
    and write lock), so everything the request did commits or rolls back
    together. Pony's session costs about twice a bare BEGIN/COMMIT, which
    is why a unit does not enter it unless asked.

    Request code must not enter `with db_session:` itself: a nested Pony
    session does not join a transaction the unit began.
    """

    __slots__ = ("_con", "_orm_context", "_orm_db", "_write")

    def __init__(self, *, write: bool) -> None:
        self._write = write
        self._orm_context: Any = None  # Pony's db_session, once entered
        self._orm_db: orm.Database | None = None
        self._con: sqlite3.Connection | None = None  # this unit's open transaction

    def enter(self) -> None:
        """Make this the calling thread's unit of work."""
        _local.current = self

    def connection(
        self, orm_db: orm.Database, *, read_only: bool = False
    ) -> sqlite3.Connection:
        """The connection for this unit's next statement (see the class).

        read_only: the statement only reads, and may run before the writing
        unit's transaction (in autocommit) rather than begin it. For
        lookups that precede the unit of work, such as finding the caller
        of a token: the write lock is then held for the request's writes,
        not for its authentication too.
        """
        if self._con is not None:
            return self._con
        if self._orm_context is not None:
            return _orm_connection(orm_db)
        con = _pooled(orm_db)
        if not self._write or read_only:
            return con
        provider = orm_db.provider
        provider.acquire_lock()  # BusyError-worthy OperationalError on timeout
        try:
            con.execute(sqlite.BEGIN_WRITE)
        except BaseException:
            provider.release_lock()
            raise
        self._con, self._orm_db = con, orm_db
        return con

    def require_orm(self) -> None:
        """Enter Pony's db_session, adopting this unit's transaction if it began."""
        if self._orm_context is not None:
            return
        context = _WRITE if self._write else _READ
        try:
            context.__enter__()
        except Exception as ex:
            _raise_translated(ex)
        self._orm_context = context
        if self._con is not None and self._orm_db is not None:
            # Pony commits or rolls back this connection and releases the
            # write lock when the session ends: hand all three over.
            cache = self._orm_db._get_cache()
            cache.connection = self._con
            cache.in_transaction = True
            cache.immediate = True
            self._con = None

    def finish(self, succeeded: bool) -> None:
        """Commit when succeeded, roll back otherwise; the unit ends either way."""
        _local.current = None
        con, orm_db = self._con, self._orm_db
        if con is not None and orm_db is not None:
            self._con = self._orm_db = None
            _finish_transaction(orm_db, con, succeeded)
        elif self._orm_context is not None:
            self._finish_orm(succeeded)

    def _finish_orm(self, succeeded: bool) -> None:
        context, self._orm_context = self._orm_context, None
        if not succeeded:
            context.__exit__(RequestFailedError, _FAILED, None)
            return
        try:
            context.__exit__(None, None, None)
        except Exception as ex:
            # Pony rolled back and cleared the thread's state before raising.
            _raise_translated(ex)


def _finish_transaction(
    orm_db: orm.Database, con: sqlite3.Connection, succeeded: bool
) -> None:
    """Commit or roll back a unit's own transaction; release the write lock."""
    try:
        if not succeeded:
            _rollback_quietly(orm_db, con)
            return
        try:
            con.execute("COMMIT")
        except sqlite3.Error as ex:
            # A refused COMMIT (a deferred constraint, an I/O error) leaves
            # the transaction open.
            _rollback_quietly(orm_db, con)
            _raise_translated(ex)
    finally:
        orm_db.provider.release_lock()


def _raise_translated(ex: Exception) -> NoReturn:
    """Raise the db.errors form of ex, or ex itself when it has none."""
    translated = translate(ex)
    if translated is ex:
        raise ex
    raise translated from ex


def _rollback_quietly(orm_db: orm.Database, con: sqlite3.Connection) -> None:
    if not con.in_transaction:
        return
    try:
        con.execute("ROLLBACK")
    except sqlite3.Error:
        # The connection cannot be trusted: take it out of the pool and
        # close it (SQLite rolls back whatever was left).
        orm_db.provider.drop(con)


def _orm_connection(orm_db: orm.Database) -> sqlite3.Connection:
    """The connection of the thread's Pony db_session, in that session's mode."""
    con: sqlite3.Connection = (
        orm_db._get_cache().prepare_connection_for_query_execution()
    )
    return con


def _pooled(orm_db: orm.Database) -> sqlite3.Connection:
    """The thread's pooled connection, opened with the on_connect PRAGMAs if new.

    Pony's pool is thread-local; its connect() checks the process id (a
    getpid(2) per call) behind an exception-wrapping decorator. When the
    thread already holds a connection in this process it is returned
    directly (Pony internals: pool.con/pool.pid, pinned 0.7.20).
    """
    pool = orm_db.provider.pool
    con: sqlite3.Connection | None = pool.con
    if con is not None and pool.pid == _pid:
        return con
    con, is_new = orm_db.provider.connect()
    if is_new:
        orm_db.call_on_connect(con)
    return con


_pid = os.getpid()


def _forked() -> None:
    global _pid  # renewed in a forked child
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def require_orm_session() -> None:
    """Enter Pony's db_session for the current unit: call before entity code."""
    unit: Session | None = getattr(_local, "current", None)
    if unit is not None:
        unit.require_orm()


def connection(orm_db: orm.Database, *, read_only: bool = False) -> sqlite3.Connection:
    """The connection for the next statement of the current unit of work.

    Inside a unit: the unit's (see Session.connection, also for read_only).
    Outside one, inside a Pony db_session (scripts, tests): the session's
    connection in its mode. Otherwise the thread's pooled connection in
    autocommit mode.
    """
    unit: Session | None = getattr(_local, "current", None)
    if unit is not None:
        return unit.connection(orm_db, read_only=read_only)
    if orm.core.local.db_session is not None:
        return _orm_connection(orm_db)
    return _pooled(orm_db)


def in_session() -> bool:
    """True while the calling thread has a unit of work or a db_session (leak detector)."""
    return (
        getattr(_local, "current", None) is not None
        or orm.core.local.db_session is not None
    )


# What Pony raises when SQLite refuses: the HTTP layer registers one handler
# for these and answers with whatever translate() makes of them.
DRIVER_ERRORS: tuple[type[Exception], ...] = (
    orm.core.TransactionError,
    dbapiprovider.DBException,
    sqlite3.Error,  # statements the store runs on the session's connection
)
