"""The interface every engine implements: one database on one engine.

db.database opens the service's database through it: migrations() for
the runner, require_database() when migrations are off, bind(), the
schema check through schema_tables(), started(); gate(), begin_write()
and fault() while serving; closed() after every connection closed. The tooling asks
the same object for its migration backend, its introspection and its
planner. Each engine package (db/engines/sqlite/, db/engines/postgres/)
implements it in engine.py; db.engines.engine_for() picks one.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from db.engines.base.events import ChangeWatch, EventTail
from db.engines.base.gates import WriteGate
from db.engines.base.migration import Backend
from db.engines.base.operations import Dialect
from db.engines.base.plan import Plan, Snapshot
from db.engines.base.schema import Schema
from db.target import DatabaseTarget


class ScratchSource(Protocol):
    """Where empty scratch databases of one engine come from."""

    def database(self) -> AbstractContextManager[DatabaseTarget]:
        """An empty database of its own, removed when the block ends."""
        ...


class Engine(Protocol):
    """One database on one engine, through its lifecycle and for the tooling."""

    @property
    def dialect(self) -> Dialect:
        """The domain operations this engine answers (its name too)."""

    @property
    def target(self) -> DatabaseTarget:
        """Which database."""

    def describe(self) -> str:
        """What to call the database in logs and errors (no secrets)."""

    # The service's start-up and life.

    def migrations(self) -> Backend:
        """The migration runner's backend for this database."""

    def require_database(self) -> None:
        """StartupError when there is no database to serve (migrations off)."""

    def bind(self, orm_db: Any) -> None:
        """Bind a Pony Database whose entities are defined (hooks first)."""

    def started(self, orm_db: Any) -> None:
        """Checks and maintenance once the database is open and mapped."""

    def gate(self, timeout: float) -> WriteGate:
        """The write gate requests pass (bounded by timeout).

        Shared by every process forked after the database opened, when the
        engine was told several will serve.
        """

    def begin_write(self, orm_db: Any) -> None:
        """Begin the current db_session's write transaction, past the gate.

        SQLite: BEGIN IMMEDIATE. PostgreSQL: the transaction, its lock and
        statement timeouts set for it alone (SET LOCAL).
        """

    def fault(self) -> str | None:
        """Why the database cannot serve right now, or None."""

    def closed(self) -> None:
        """Maintenance after every connection was closed."""

    def event_tail(self) -> EventTail:
        """A reader of the events table as far as it is settled (one per reader)."""

    def event_watch(self, listen_url: str | None) -> ChangeWatch:
        """How the reader learns of other processes' commits (listen_url: PostgreSQL's
        direct connection for LISTEN; None polls)."""

    # The tooling: scratch databases, introspection, the planner.

    def bind_scratch(self, orm_db: Any) -> None:
        """Bind a Pony Database for the tooling: no hooks, created if missing."""

    def schema_tables(self, script: str) -> tuple[Schema, Schema]:
        """The tables script creates on a scratch of this engine, and this one's.

        Both introspected the same way, the tracking tables left out: the
        two sides of the schema check.
        """

    def snapshot(self) -> Snapshot:
        """This database's schema for the planner, tracking tables left out."""

    def script_snapshot(
        self,
        script: str,
        column_sql: dict[tuple[str, str], str],
        fills: dict[tuple[str, str], str],
    ) -> Snapshot:
        """The schema a DDL script creates (on a scratch), for the planner."""

    def wide_auto_key(self, column_sql: str) -> str:
        """Pony's definition of a 64-bit auto key column as this engine needs it."""

    def literal(self, value: Any) -> str | None:
        """A stored value as an SQL literal of this engine (None: none exists)."""

    def plan(self, old: Snapshot, new: Snapshot) -> Plan:
        """The changes that take schema old to new on this engine."""
