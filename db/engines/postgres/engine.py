"""PostgreSQL as an Engine: Pony's postgres provider over psycopg2.

What the runtime asks (bind with the session settings, the capacity
check, an open write gate) and what the tooling asks (the runner's
backend, introspection, the planner) of one PostgreSQL database; each
answered by the module of this package that holds it.
"""

from __future__ import annotations

import logging
from typing import Any

from pony import orm

from db.engines.base import sql
from db.engines.base.gates import OpenGate, WriteGate
from db.engines.base.migration import TRACKING_TABLES, Backend
from db.engines.base.plan import Plan, Snapshot
from db.engines.base.schema import Schema
from db.engines.postgres import introspection, planner, snapshot
from db.engines.postgres.capacity import check_capacity
from db.engines.postgres.connection import connect, connect_arguments
from db.engines.postgres.migration_backend import PostgresBackend
from db.engines.postgres.operations import PostgresDialect
from db.errors import StartupError
from db.target import PostgresTarget

log = logging.getLogger("db.database")


class PostgresEngine:
    """One PostgreSQL database: concurrent writers, row locks bounded by lock_timeout."""

    dialect: PostgresDialect = PostgresDialect()

    def __init__(
        self,
        target: PostgresTarget,
        *,
        threads: int = 8,
        lock_timeout: float = 5.0,
        processes: int = 1,
    ) -> None:
        self.target = target
        self.threads = threads
        self.lock_timeout = lock_timeout
        self.processes = processes

    def describe(self) -> str:
        """The URL with its password hidden."""
        return self.target.describe()

    def migrations(self) -> Backend:
        """The runner on this database."""
        return PostgresBackend(self.target)

    def require_database(self) -> None:
        """Nothing to check here: connecting names a missing database."""

    def bind(self, orm_db: Any) -> None:
        """Bind orm_db to the database; StartupError naming why it cannot."""
        arguments = connect_arguments(self.target.url, self.lock_timeout)
        try:
            orm_db.bind(provider="postgres", **arguments)
        except Exception as ex:
            # psycopg2 names host, port, user and database, never the password.
            reason = " ".join(str(ex).split())
            raise StartupError(f"cannot connect to {self.describe()}: {reason}") from ex

    def started(self, orm_db: Any) -> None:
        """Refuse to serve when the server cannot give every thread a connection.

        Every thread of every process that will serve: the check runs once,
        in the process that opened the database before forking them.
        """
        with orm.db_session:
            check_capacity(orm_db, self.threads, processes=self.processes)

    def gate(self, timeout: float) -> WriteGate:
        """PostgreSQL orders concurrent writers itself (row locks, lock_timeout)."""
        return OpenGate()

    def fault(self) -> str | None:
        """Nothing to watch between requests: a lost server shows as errors."""
        return None

    def closed(self) -> None:
        """Nothing to maintain: PostgreSQL checkpoints on its own."""
        log.info("database closed")

    def bind_scratch(self, orm_db: Any) -> None:
        """Bind orm_db to the database for the tooling (no session settings)."""
        orm_db.bind(provider="postgres", dsn=self.target.url)

    def schema_tables(self, script: str) -> tuple[Schema, Schema]:
        """The tables script creates in this session's pg_temp, and the database's."""
        con = connect(self.target, "schema check")
        try:
            expected = introspection.schema_of_script(
                con, sql.split(script, "postgres")
            )
            actual = introspection.read(con, leave_out=TRACKING_TABLES)
        finally:
            con.close()
        return expected.tables, actual.tables

    def snapshot(self) -> Snapshot:
        """The database's schema for the planner."""
        return snapshot.migrated_snapshot(self.target)

    def script_snapshot(
        self,
        script: str,
        column_sql: dict[tuple[str, str], str],
        fills: dict[tuple[str, str], str],
    ) -> Snapshot:
        """The schema a DDL script creates, in pg_temp on this database."""
        return snapshot.script_snapshot(self.target, script, column_sql, fills)

    def wide_auto_key(self, column_sql: str) -> str:
        """BIGSERIAL where Pony writes SERIAL (32-bit) for every auto key."""
        return column_sql.replace("SERIAL PRIMARY KEY", "BIGSERIAL PRIMARY KEY", 1)

    def literal(self, value: Any) -> str | None:
        """A stored value as a PostgreSQL literal."""
        return snapshot.literal(value)

    def plan(self, old: Snapshot, new: Snapshot) -> Plan:
        """Plain ALTER TABLE: PostgreSQL changes every table in place."""
        return planner.diff(old, new)
