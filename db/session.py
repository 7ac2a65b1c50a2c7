"""How work reaches the database: Pony db_sessions and a bounded write gate.

Every request that uses the database runs in one Pony `db_session`,
entered and left by the HTTP middleware. A writing request first reads
what it must know before it writes (who is calling), then calls
`begin_write()`: that takes this process's write gate, waiting at most
the configured timeout, and starts the session's write transaction with
Pony's public `Database.get_connection()`, which on SQLite is
`BEGIN IMMEDIATE` (SQLite's write lock, waiting up to busy_timeout). Work
outside a request (background jobs, commands) writes inside
`writing()`, which takes the same gate.

Why a gate of our own: Pony serialises a process's SQLite writers with a
lock it waits on without a timeout, so one stuck writer would stall every
other one. Every writer of the service passes the gate first, so Pony's
own lock is never contended and the wait is bounded here. PostgreSQL
runs writers concurrently (row locks, bounded by lock_timeout): its gate
admits everyone.

Errors the driver raises are translated here to db.errors (translate()),
so nothing above db/ sees driver or Pony exception types.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from pony import orm

from db.engines.sqlite import connection as sqlite
from db.errors import BusyError, ConflictError, DatabaseError, StorageError

# db_session objects hold configuration only (their state is thread-local),
# so one shared instance of each serves every thread.
READ = orm.db_session
WRITE = orm.db_session(immediate=True)

LockObserver = Callable[[float, bool], None]


class RequestFailedError(Exception):
    """Passed to db_session.__exit__ so that it rolls back."""


FAILED = RequestFailedError("request failed")


class WriteGate(Protocol):
    """Admits writers; acquire() raises BusyError past its timeout."""

    observe: LockObserver | None

    def acquire(self) -> None:
        """Wait for the gate (bounded); BusyError when the wait gives up."""

    def release(self) -> None:
        """Let the next writer in."""


class SerialGate:
    """One writer at a time in this process, waiting at most timeout seconds."""

    def __init__(self, timeout: float, observe: LockObserver | None = None) -> None:
        self._lock = threading.Lock()
        self._timeout = timeout
        self.observe = observe

    def acquire(self) -> None:
        """Take the gate, or raise BusyError after the timeout."""
        if self._lock.acquire(False):  # uncontended: no clock reads
            if self.observe is not None:
                self.observe(0.0, True)
            return
        started = time.perf_counter()
        got = self._lock.acquire(timeout=self._timeout)
        if self.observe is not None:
            self.observe(time.perf_counter() - started, got)
        if not got:
            raise BusyError(
                f"another request held this process's write lock for over "
                f"{self._timeout:g} s"
            )

    def release(self) -> None:
        """Release the gate."""
        self._lock.release()


class OpenGate:
    """Admits every writer at once (the engine orders them: PostgreSQL)."""

    observe: LockObserver | None = None

    def acquire(self) -> None:
        """Nothing to wait for."""

    def release(self) -> None:
        """Nothing to release."""


def begin_write(orm_db: orm.Database, gate: WriteGate) -> None:
    """Start the current db_session's write transaction, behind the gate.

    Call inside a db_session, before the first write; end the session
    (commit or roll back), then release the gate.
    """
    gate.acquire()
    try:
        orm_db.get_connection()  # public: begins the transaction (IMMEDIATE)
    except Exception as ex:
        gate.release()
        raise_translated(ex)


@contextlib.contextmanager
def writing(orm_db: orm.Database, gate: WriteGate) -> Iterator[None]:
    """A write transaction outside a request: commit at the end, roll back on error."""
    gate.acquire()
    try:
        with WRITE:
            yield
    except (orm.OrmError, orm.DBException) as ex:
        raise_translated(ex)
    finally:
        gate.release()


def finish(context: Any, succeeded: bool) -> None:
    """Leave a db_session: commit when succeeded, roll back otherwise."""
    if not succeeded:
        context.__exit__(RequestFailedError, FAILED, None)
        return
    try:
        context.__exit__(None, None, None)
    except Exception as ex:
        # Pony rolled back and left the session before raising.
        raise_translated(ex)


def driver_error(ex: BaseException) -> BaseException | None:
    """The DB-API exception under Pony's wrappers, if there is one."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [ex]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if _is_driver_error(current):
            return current
        todo.append(getattr(current, "original_exc", None))
        for info in getattr(current, "exceptions", None) or ():
            todo.append(info[1] if isinstance(info, tuple) else info)
        todo.extend((current.__cause__, current.__context__))
    return None


def _is_driver_error(ex: BaseException) -> bool:
    if isinstance(ex, sqlite.ERROR):
        return True
    module = type(ex).__module__
    return module.startswith("psycopg2") and isinstance(ex, Exception)


def translate(ex: BaseException) -> BaseException:
    """The db.errors form of a Pony or driver exception (or ex unchanged)."""
    if isinstance(ex, DatabaseError):
        return ex
    if isinstance(ex, OSError):
        # Pony opens a thread's first connection lazily and raises
        # OSError when the file is gone ("Database file is not found").
        return StorageError(str(ex))
    original = driver_error(ex)
    kind: type[DatabaseError] | None = None
    if isinstance(original, sqlite.ERROR):
        kind = sqlite.classify(original)
    elif original is not None:
        from db.engines.postgres import (
            operations as postgres,  # psycopg2 only when it is in play
        )

        kind = postgres.classify(original)
    if kind is None and isinstance(
        ex,
        # Pony's optimistic check: a row this session read changed under it
        # before its write (PostgreSQL: reads take no lock).
        (
            orm.TransactionIntegrityError,
            orm.OptimisticCheckError,
            orm.UnrepeatableReadError,
        ),
    ):
        kind = ConflictError
    if kind is None:
        return ex
    return kind(MESSAGES.get(kind, str(original or ex)))


MESSAGES: dict[type[DatabaseError], str] = {
    BusyError: "the database stayed locked by another writer",
    ConflictError: "the change conflicts with stored data",
}


def raise_translated(ex: Exception) -> Any:
    """Raise the db.errors form of ex, or ex itself when it has none."""
    translated = translate(ex)
    if translated is ex:
        raise ex
    raise translated from ex


# What Pony and the drivers raise: the HTTP layer registers one handler for
# these and answers with whatever translate() makes of them.
DRIVER_ERRORS: tuple[type[Exception], ...] = (
    orm.OrmError,
    orm.DBException,
    sqlite.ERROR,
    OSError,
)
