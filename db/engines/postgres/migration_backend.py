"""The runner on PostgreSQL: an advisory lock, transactional DDL, timeouts.

The run holds an advisory lock in a transaction of its own (locks.py),
on the direct URL when one is set (PostgresTarget.direct()). Each file
runs in one transaction together with its history row (DDL is
transactional: a failure leaves no trace), after SET LOCAL lock_timeout
and statement_timeout (defaults below, overridable in the header) and a
re-check of the history under a table lock. Nothing is set for a whole
session, so a run works through a transaction-pooling pgbouncer too. A
lock_timeout rolls the file back and it is retried. A `transaction=off`
file (one statement, such as CREATE INDEX CONCURRENTLY IF NOT EXISTS)
runs on a direct session of its own (outside.py).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import psycopg2

from db.engines.base.migration import (
    HISTORY_TABLE,
    LOG_TABLE,
    TRACKING_TABLES,
    AppliedMigration,
    Migration,
    Record,
    actor,
    statements_shown,
)
from db.engines.base.schema import FullSchema
from db.engines.base.sql import Dialect
from db.engines.postgres import connection, introspection, locks
from db.engines.postgres.outside import apply_outside
from db.engines.postgres.tracking import (
    INSERT,
    TRACKING_DDL,
    failure,
    has_history,
    read_history,
    transaction,
)
from db.errors import MigrationError
from db.target import PostgresTarget

log = logging.getLogger("db.migrate")

LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT = "5min"
LOCK_RETRIES = 3  # attempts of a file that hit lock_timeout (it rolled back)


class PostgresSession:
    """The runner's work connection, while the lock connection holds the lock."""

    def __init__(self, con: Any, lock: locks.HeldLock, target: PostgresTarget):
        self._con = con
        self._lock = lock
        self._target = target
        # A killed runner's statement stops within a second instead of running
        # on (and holding its locks) until it ends by itself (PostgreSQL 14+).
        self._check_client = con.server_version >= 140000

    def has_tracking(self) -> bool:
        """Whether the history table exists in the current schema."""
        with self._con.cursor() as cur:
            return has_history(cur)

    def user_tables(self) -> list[str]:
        """Tables of the current schema other than the tracking tables."""
        return introspection.user_tables(self._con, TRACKING_TABLES)

    def ensure_tracking(self) -> None:
        """Create the tracking tables (under the lock, so never twice at once)."""
        with transaction(self._con) as cur:
            for ddl in TRACKING_DDL:
                cur.execute(ddl)

    def history(self) -> dict[int, AppliedMigration]:
        """The history table's rows by version."""
        return read_history(self._con)

    def log_event(self, version: int | None, action: str, detail: str) -> None:
        """Write one audit row in its own small transaction."""
        with transaction(self._con) as cur:
            self._insert_log(cur, version, action, detail)

    def _insert_log(
        self, cur: Any, version: int | None, action: str, detail: str
    ) -> None:
        cur.execute(
            f"INSERT INTO {LOG_TABLE} (version, action, detail) VALUES (%s, %s, %s)",
            (version, action, f"{detail} (by {actor()})"),
        )

    def apply(self, migration: Migration) -> bool:
        """Run one file with its history row; False if another run did."""
        self._lock.confirm()
        if not migration.header.transaction:
            return self._apply_outside(migration)
        for attempt in range(1, LOCK_RETRIES + 1):
            try:
                return self._apply(migration)
            except psycopg2.errors.LockNotAvailable as ex:
                if attempt == LOCK_RETRIES:
                    raise MigrationError(
                        f"{migration.name} waited longer than lock_timeout "
                        f"({migration.header.lock_timeout or LOCK_TIMEOUT}) for a lock "
                        f"{LOCK_RETRIES} times; rolled back each time. A long "
                        "transaction holds the table: end it, or raise the file's "
                        "'-- migrate: lock_timeout='"
                    ) from ex
                log.warning(
                    "%s hit lock_timeout and rolled back; retrying (%d of %d)",
                    migration.name,
                    attempt,
                    LOCK_RETRIES,
                )
                time.sleep(0.5 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _apply(self, migration: Migration) -> bool:
        started = time.perf_counter()
        header = migration.header
        with transaction(self._con) as cur:
            cur.execute(
                "SET LOCAL lock_timeout = %s", (header.lock_timeout or LOCK_TIMEOUT,)
            )
            cur.execute(
                "SET LOCAL statement_timeout = %s",
                (header.statement_timeout or STATEMENT_TIMEOUT,),
            )
            if self._check_client:
                cur.execute("SET LOCAL client_connection_check_interval = '1s'")
            # Re-check under a lock that two runners cannot share.
            cur.execute(f"LOCK TABLE {HISTORY_TABLE} IN SHARE ROW EXCLUSIVE MODE")
            cur.execute(
                f"SELECT 1 FROM {HISTORY_TABLE} WHERE version = %s",
                (migration.version,),
            )
            if cur.fetchone():
                return False
            for number, statement in enumerate(migration.statements, 1):
                try:
                    cur.execute(statement)
                except psycopg2.errors.LockNotAvailable:
                    raise
                except psycopg2.Error as ex:
                    raise MigrationError(
                        failure(migration, number, statement, ex)
                    ) from ex
            elapsed = round((time.perf_counter() - started) * 1000, 3)
            cur.execute(
                INSERT,
                (
                    migration.version,
                    migration.name,
                    migration.checksum,
                    elapsed,
                    "applied",
                ),
            )
        return True

    def _apply_outside(self, migration: Migration) -> bool:
        """One statement on its own (transaction=off), then its history row."""
        if migration.version in self.history():
            return False
        apply_outside(
            self._target, self._con, migration, LOCK_TIMEOUT, STATEMENT_TIMEOUT
        )
        return True

    def record(self, records: list[Record], action: str, detail: str) -> None:
        """Write history rows without running the files, and one audit row each."""
        with transaction(self._con) as cur:
            for record in records:
                m = record.migration
                cur.execute(INSERT, (m.version, m.name, m.checksum, 0.0, record.how))
                self._insert_log(cur, m.version, action, detail)

    def set_checksum(self, version: int, checksum: str, detail: str) -> None:
        """Store a new checksum for an applied version, audited."""
        with transaction(self._con) as cur:
            cur.execute(
                f"UPDATE {HISTORY_TABLE} SET checksum = %s WHERE version = %s",
                (checksum, version),
            )
            self._insert_log(cur, version, "accept_checksum", detail)

    def full_schema(self) -> FullSchema:
        """The current schema, tracking tables left out."""
        return introspection.read(self._con, leave_out=TRACKING_TABLES)


class PostgresBackend:
    """Migrations on one PostgreSQL database (its current schema)."""

    dialect: Dialect = "postgres"

    def __init__(self, target: PostgresTarget):
        self.target = target.direct()

    def describe(self) -> str:
        """The URL without its password."""
        return self.target.describe()

    @contextlib.contextmanager
    def session(self, lock_timeout: float) -> Iterator[PostgresSession]:
        """The advisory lock on its own connection, then the work connection."""
        with locks.advisory_lock(self.target, lock_timeout) as lock:
            con = connection.connect(self.target, "run")
            try:
                yield PostgresSession(con, lock, self.target)
            finally:
                con.close()

    @contextlib.contextmanager
    def _read_only(self) -> Iterator[Any]:
        con = connection.connect(self.target, "read")
        try:
            # Out of autocommit, so psycopg2 says READ ONLY in each BEGIN; in
            # autocommit it would SET a session default, which a pooler would
            # hand to the next client's transactions.
            con.set_session(readonly=True, autocommit=False)
            yield con
        finally:
            con.close()

    def read_history(self) -> dict[int, AppliedMigration]:
        """The history, read in a read-only session without the lock."""
        with self._read_only() as con:
            return read_history(con)

    def untracked_tables(self) -> list[str]:
        """The tables of a database without a history table."""
        with self._read_only() as con, con.cursor() as cur:
            if has_history(cur):
                return []
            return introspection.user_tables(con, TRACKING_TABLES)

    def read_full_schema(self) -> FullSchema:
        """The current schema, read-only."""
        with self._read_only() as con:
            return introspection.read(con, leave_out=TRACKING_TABLES)

    def steps(self, migration: Migration) -> list[str]:
        """The runner's statements around the file's own."""
        header = migration.header
        lock = f"lock_timeout = '{header.lock_timeout or LOCK_TIMEOUT}'"
        statement = (
            f"statement_timeout = '{header.statement_timeout or STATEMENT_TIMEOUT}'"
        )
        if not header.transaction:
            return [
                "-- outside a transaction (transaction=off): one statement on a direct "
                f"session of its own, started with {lock}, {statement}",
                *statements_shown(migration),
                f"INSERT INTO {HISTORY_TABLE} ... -- version {migration.version}, "
                "in its own transaction",
            ]
        return [
            "BEGIN",
            f"SET LOCAL {lock}",
            f"SET LOCAL {statement}",
            f"LOCK TABLE {HISTORY_TABLE} IN SHARE ROW EXCLUSIVE MODE  -- re-check: "
            f"version {migration.version} still not applied",
            *statements_shown(migration),
            f"INSERT INTO {HISTORY_TABLE} ... -- version {migration.version}",
            f"COMMIT  -- a lock_timeout rolls back; retried up to {LOCK_RETRIES} times",
        ]
