"""How work reaches the database: Pony db_sessions and the write transaction.

Every request that uses the database runs in one Pony `db_session`,
entered and left by the HTTP middleware. A writing request first reads
what it must know before it writes (who is calling), then calls
`begin_write()`: that takes the engine's write gate, waiting at most the
configured timeout (db/engines/base/gates.py says why there is one), and
has the engine begin the session's write transaction: on SQLite
`BEGIN IMMEDIATE` (SQLite's write lock, waiting up to busy_timeout), on
PostgreSQL a transaction with its lock and statement timeouts. Work outside a
request (background jobs, commands) writes inside `writing()`, which
takes the same gate.

Errors the driver raises are translated here to db.errors (translate()),
as the engine whose driver raised them classifies them, so nothing above
db/ sees driver or Pony exception types.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pony import orm

from db import engines
from db.engines.base.engine import Engine
from db.engines.base.gates import WriteGate
from db.errors import BusyError, ConflictError, DatabaseError, StorageError

# db_session objects hold configuration only (their state is thread-local),
# so one shared instance of each serves every thread.
READ = orm.db_session
WRITE = orm.db_session(immediate=True)


class RequestFailedError(Exception):
    """Passed to db_session.__exit__ so that it rolls back."""


FAILED = RequestFailedError("request failed")


def begin_write(orm_db: orm.Database, gate: WriteGate, engine: Engine) -> None:
    """Start the current db_session's write transaction, behind the gate.

    Call inside a db_session, before the first write; end the session
    (commit or roll back), then release the gate.
    """
    gate.acquire()
    try:
        engine.begin_write(orm_db)
    except Exception as ex:
        gate.release()
        raise_translated(ex)


@contextlib.contextmanager
def writing(orm_db: orm.Database, gate: WriteGate, engine: Engine) -> Iterator[None]:
    """A write transaction outside a request: commit at the end, roll back on error."""
    gate.acquire()
    try:
        with WRITE:
            engine.begin_write(orm_db)
            yield
    except (orm.OrmError, orm.DBException) as ex:
        raise_translated(ex)
    finally:
        gate.release()


@contextlib.contextmanager
def reading() -> Iterator[None]:
    """A read-only db_session outside a request; driver errors translated."""
    try:
        with READ:
            yield
    except (orm.OrmError, orm.DBException) as ex:
        raise_translated(ex)


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
        if engines.is_driver_error(current):
            return current
        todo.append(getattr(current, "original_exc", None))
        for info in getattr(current, "exceptions", None) or ():
            todo.append(info[1] if isinstance(info, tuple) else info)
        todo.extend((current.__cause__, current.__context__))
    return None


def translate(ex: BaseException) -> BaseException:
    """The db.errors form of a Pony or driver exception (or ex unchanged)."""
    if isinstance(ex, DatabaseError):
        return ex
    if isinstance(ex, OSError):
        # Pony opens a thread's first connection lazily and raises
        # OSError when the file is gone ("Database file is not found").
        return StorageError(str(ex))
    original = driver_error(ex)
    kind = engines.classify(original) if original is not None else None
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
    *engines.standard_driver_errors(),
    OSError,
)
