"""PostgreSQL as an Engine: Pony's postgres provider over psycopg2.

What the runtime asks (bind, the capacity check, an open write gate,
write transactions with their timeouts) and what the tooling asks (the
runner's backend, introspection, the planner) of one PostgreSQL
database; each answered by the module of this package that holds it.
Pony's connections carry no session settings, so the service runs
through a transaction-pooling pgbouncer as it does connected directly;
the runner and the tooling use the direct URL when there is one.
"""

from __future__ import annotations

import logging
from typing import Any

from pony import orm

from db.engines.base import sql
from db.engines.base.events import ChangeWatch, EventTail
from db.engines.base.gates import OpenGate, WriteGate
from db.engines.base.migration import TRACKING_TABLES, Backend
from db.engines.base.plan import Plan, Snapshot
from db.engines.base.schema import Schema
from db.engines.postgres import introspection, planner, snapshot
from db.engines.postgres.capacity import check_capacity
from db.engines.postgres.connection import connect, connect_arguments
from db.engines.postgres.events import ListenWatch, PollWatch, PostgresTail
from db.engines.postgres.migration_backend import PostgresBackend
from db.engines.postgres.operations import PostgresDialect
from db.engines.postgres.transaction import milliseconds, set_local, set_local_sql
from db.errors import StartupError
from db.target import PostgresTarget

log = logging.getLogger("db.database")


class PostgresEngine:
    """One PostgreSQL database: concurrent writers, row locks bounded by lock_timeout.

    threads and processes are what the service runs (the connections it
    needs); lock_timeout and statement_timeout bound each write
    transaction's lock waits and statements (SET LOCAL, seconds).
    """

    dialect: PostgresDialect = PostgresDialect()

    def __init__(
        self,
        target: PostgresTarget,
        *,
        threads: int = 8,
        processes: int = 1,
        lock_timeout: float = 5.0,
        statement_timeout: float = 30.0,
    ) -> None:
        self.target = target
        self.threads = threads
        self.processes = processes
        self.lock_timeout = lock_timeout
        self.statement_timeout = statement_timeout
        self._write_settings = set_local_sql(
            lock_timeout=milliseconds(lock_timeout),
            statement_timeout=milliseconds(statement_timeout),
        )

    def describe(self) -> str:
        """The URL with its password hidden."""
        return self.target.describe()

    def migrations(self) -> Backend:
        """The runner on this database (its direct URL when it has one)."""
        return PostgresBackend(self.target)

    def require_database(self) -> None:
        """Nothing to check here: connecting names a missing database."""

    def bind(self, orm_db: Any) -> None:
        """Bind orm_db to the database; StartupError naming why it cannot."""
        arguments = connect_arguments(self.target.url)
        try:
            orm_db.bind(provider="postgres", **arguments)
        except Exception as ex:
            # psycopg2 names host, port, user and database, never the password.
            reason = " ".join(str(ex).split())
            raise StartupError(f"cannot connect to {self.describe()}: {reason}") from ex

    def started(self, orm_db: Any) -> None:
        """Refuse to serve another database than the direct URL's, or too few connections."""
        with orm.db_session:
            if self.target.direct_url is not None:
                self._same_database(orm_db)
            check_capacity(orm_db, self.threads, self.processes)

    def _same_database(self, orm_db: Any) -> None:
        """StartupError unless the direct URL reaches the database the service uses."""
        which = (
            "SELECT (SELECT oid FROM pg_database WHERE datname = current_database()), "
            "pg_postmaster_start_time()"
        )
        (served,) = orm_db.select(which)
        con = connect(self.target.direct(), "identity")
        try:
            with con.cursor() as cur:
                cur.execute(which)
                direct = cur.fetchone()
        finally:
            con.close()
        if tuple(served) != tuple(direct):
            raise StartupError(
                "SERVICE_DIRECT_DATABASE_URL reaches another database than "
                f"SERVICE_DATABASE_URL ({self.target.direct().describe()} and "
                f"{self.describe()}): point both at the same database"
            )

    def begin_write(self, orm_db: Any) -> None:
        """Begin the write transaction with its lock and statement timeouts."""
        set_local(orm_db, self._write_settings)

    def gate(self, timeout: float) -> WriteGate:
        """PostgreSQL orders concurrent writers itself (row locks, lock_timeout)."""
        return OpenGate()

    def fault(self) -> str | None:
        """Nothing to watch between requests: a lost server shows as errors."""
        return None

    def closed(self) -> None:
        """Nothing to maintain: PostgreSQL checkpoints on its own."""
        log.info("database closed")

    def event_tail(self) -> EventTail:
        """Held back at a gap until every writer that could fill it ended."""
        return PostgresTail()

    def event_watch(self, listen_url: str | None) -> ChangeWatch:
        """LISTEN on a direct connection to listen_url; polling without one."""
        return ListenWatch(listen_url) if listen_url else PollWatch()

    def bind_scratch(self, orm_db: Any) -> None:
        """Bind orm_db to the database for the tooling (its direct URL)."""
        orm_db.bind(provider="postgres", dsn=self.target.direct().url)

    def schema_tables(self, script: str) -> tuple[Schema, Schema]:
        """The tables script creates in this session's pg_temp, and the database's."""
        con = connect(self.target.direct(), "schema check")
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
        return snapshot.migrated_snapshot(self.target.direct())

    def script_snapshot(
        self,
        script: str,
        column_sql: dict[tuple[str, str], str],
        fills: dict[tuple[str, str], str],
    ) -> Snapshot:
        """The schema a DDL script creates, in pg_temp on this database."""
        return snapshot.script_snapshot(self.target.direct(), script, column_sql, fills)

    def wide_auto_key(self, column_sql: str) -> str:
        """BIGSERIAL where Pony writes SERIAL (32-bit) for every auto key."""
        return column_sql.replace("SERIAL PRIMARY KEY", "BIGSERIAL PRIMARY KEY", 1)

    def literal(self, value: Any) -> str | None:
        """A stored value as a PostgreSQL literal."""
        return snapshot.literal(value)

    def plan(self, old: Snapshot, new: Snapshot) -> Plan:
        """Plain ALTER TABLE: PostgreSQL changes every table in place."""
        return planner.diff(old, new)
