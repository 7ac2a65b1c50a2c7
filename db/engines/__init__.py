"""Database engines: one package per engine, one interface above them (base/).

This module is the one place that names the engine packages. Each is
imported when it is first asked for, so psycopg2 loads only where
PostgreSQL is used, and importing the domain (which speaks to the
interface in base/) loads no engine at all. A third engine is a package
beside sqlite/ and postgres/, and a branch in each function below.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from db.engines.base.engine import Engine, ScratchSource
from db.engines.base.migration import Backend, Rules
from db.engines.base.sql import Dialect
from db.engines.base.transfer import RowSink, RowSource, TransferError
from db.errors import DatabaseError
from db.target import DatabaseTarget, PostgresTarget, SqliteTarget


def standard_driver_errors() -> tuple[type[Exception], ...]:
    """What the standard library's drivers raise (sqlite3): the runtime handles these."""
    from db.engines.sqlite.errors import ERROR

    return (ERROR,)


def engine_for(
    target: DatabaseTarget,
    *,
    synchronous: str = "NORMAL",
    threads: int = 8,
    processes: int = 1,
    lock_timeout: float = 5.0,
    statement_timeout: float = 30.0,
) -> Engine:
    """The engine for a target: an SQLite file or a PostgreSQL database.

    synchronous is SQLite's PRAGMA. processes is how many processes will
    serve from the database once it is open (worker processes forked
    after it opened): SQLite's writers then share one write gate across
    them, and PostgreSQL must have connections for every one. threads
    (the connections each process needs), lock_timeout (how long a write
    waits for a lock) and statement_timeout (how long one statement of a
    write may run) are PostgreSQL's.
    """
    if isinstance(target, PostgresTarget):
        from db.engines.postgres.engine import PostgresEngine

        return PostgresEngine(
            target,
            threads=threads,
            processes=processes,
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
        )
    from db.engines.sqlite.engine import SqliteEngine

    return SqliteEngine(target.path, synchronous, processes=processes)


def migration_backend(
    target: DatabaseTarget | Path, synchronous: str = "NORMAL"
) -> Backend:
    """The migration runner's backend for a target (a bare Path is an SQLite file)."""
    if isinstance(target, Path):
        target = SqliteTarget(target)
    if isinstance(target, PostgresTarget):
        from db.engines.postgres.migration_backend import PostgresBackend

        return PostgresBackend(target)
    from db.engines.sqlite.migration_backend import SqliteBackend

    return SqliteBackend(target.path, synchronous)


def rules_for(dialect: Dialect) -> Rules:
    """What a migration file may hold on the engine called dialect."""
    if dialect == "postgres":
        from db.engines.postgres.rules import PostgresRules

        return PostgresRules()
    from db.engines.sqlite.rules import SqliteRules

    return SqliteRules()


@contextlib.contextmanager
def scratch_source(
    dialect: Dialect, like: DatabaseTarget | Path | None = None
) -> Iterator[ScratchSource]:
    """Where the tooling's scratch databases of an engine come from.

    SQLite: files in temporary folders. PostgreSQL: databases on the
    server like names (its role needs CREATEDB) or, when like is not a
    PostgreSQL database, on a throwaway server started for the block.
    """
    if dialect == "postgres":
        from db.engines.postgres.scratch import server_scratch

        with server_scratch(like if isinstance(like, PostgresTarget) else None) as pg:
            yield pg
        return
    from db.engines.sqlite.scratch import FileScratch

    yield FileScratch()


@contextlib.contextmanager
def transfer_source(source: DatabaseTarget) -> Iterator[RowSource]:
    """source, opened for `transfer` to read every row (an SQLite file)."""
    if isinstance(source, PostgresTarget):
        raise TransferError("transfer reads from an SQLite database")
    from db.engines.sqlite.transfer import source as sqlite_source

    with sqlite_source(source.path) as reading:
        yield reading


@contextlib.contextmanager
def transfer_sink(target: DatabaseTarget) -> Iterator[RowSink]:
    """target, opened for `transfer` to write in one transaction (PostgreSQL)."""
    if not isinstance(target, PostgresTarget):
        raise TransferError("transfer writes into a PostgreSQL database")
    from db.engines.postgres.transfer import sink

    with sink(target) as writing:
        yield writing


def _errors(ex: BaseException) -> ModuleType | None:
    """The errors module of the engine whose driver defines ex's class."""
    driver = type(ex).__module__.partition(".")[0]
    if driver == "sqlite3":
        from db.engines.sqlite import errors as sqlite_errors

        return sqlite_errors
    if driver == "psycopg2":
        from db.engines.postgres import errors as postgres_errors

        return postgres_errors
    return None


def is_driver_error(ex: BaseException) -> bool:
    """Whether ex is a DB-API exception of one of the engines' drivers."""
    module = _errors(ex)
    return module is not None and bool(module.is_driver_error(ex))


def classify(error: BaseException) -> type[DatabaseError] | None:
    """What a driver's error means for the caller, as its engine says (None: a bug)."""
    module = _errors(error)
    if module is None:
        return None
    kind: type[DatabaseError] | None = module.classify(error)
    return kind
