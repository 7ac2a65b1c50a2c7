"""SQLite as an Engine: one file, WAL, PRAGMAs on every connection.

What the runtime asks (bind, start-up maintenance, the write gate, the
deleted-file fault, the shutdown checkpoint) and what the tooling asks
(the runner's backend, introspection, the planner) of one SQLite file;
each answered by the module of this package that holds it.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from db.engines.base.events import ChangeWatch, EventTail
from db.engines.base.gates import SerialGate, SharedGate, WriteGate
from db.engines.base.migration import TRACKING_TABLES, Backend
from db.engines.base.plan import Plan, Snapshot
from db.engines.base.schema import Schema
from db.engines.sqlite import connection, introspection, planner, snapshot
from db.engines.sqlite.events import DataVersionWatch, SqliteTail
from db.engines.sqlite.migration_backend import SqliteBackend
from db.engines.sqlite.operations import SqliteDialect
from db.errors import StartupError, StorageError
from db.target import SqliteTarget

log = logging.getLogger("db.database")


class SqliteEngine:
    """One SQLite file: WAL, PRAGMAs on every connection, one writer at a time."""

    dialect: SqliteDialect = SqliteDialect()

    def __init__(
        self, path: Path, synchronous: str = "NORMAL", *, processes: int = 1
    ) -> None:
        # As configured (a symlink stays one) and the file it names now.
        self.configured = path.absolute()
        self.path = path.resolve()
        self.synchronous = synchronous
        self.processes = processes
        self._identity: tuple[int, int] | None = None

    @property
    def target(self) -> SqliteTarget:
        """The file."""
        return SqliteTarget(self.path)

    def describe(self) -> str:
        """The file, for logs."""
        return str(self.path)

    def migrations(self) -> Backend:
        """The runner on this file, with the service's synchronous setting."""
        return SqliteBackend(self.path, self.synchronous)

    def require_database(self) -> None:
        """StartupError when the file does not exist (SERVICE_MIGRATE=off)."""
        if not self.path.exists():
            raise StartupError(
                f"database file {self.path} does not exist (SERVICE_MIGRATE=off)"
            )

    def bind(self, orm_db: Any) -> None:
        """Bind orm_db (entities defined, hooks installed) to the file."""
        connection.install_pragmas(orm_db, self.synchronous)  # before bind()
        try:
            # Absolute path: Pony resolves a relative one against the caller.
            orm_db.bind(
                provider="sqlite",
                filename=str(self.path),
                create_db=False,
                timeout=connection.BUSY_TIMEOUT_MS / 1000,
                # Database.close() closes every thread's connection itself.
                check_same_thread=False,
            )
        except Exception as ex:
            raise StartupError(f"cannot open {self.path}: {ex}") from ex
        # Through the configured path: a symlink re-pointed later is noticed.
        self._identity = connection.file_identity(self.configured)

    def gate(self, timeout: float) -> WriteGate:
        """One writer at a time, waiting at most timeout.

        In this process; or, when several processes will serve (forked
        after this), in all of them: their writers would otherwise meet
        only in SQLite's busy handler, unordered and in coarse sleeps.
        Other processes on the file (the CLI's commands) still wait in
        the busy handler, up to busy_timeout.
        """
        if self.processes > 1:
            return SharedGate(timeout)
        return SerialGate(timeout)

    def begin_write(self, orm_db: Any) -> None:
        """BEGIN IMMEDIATE: SQLite's write lock (waiting up to busy_timeout)."""
        orm_db.get_connection()  # public: begins the transaction (IMMEDIATE)

    def started(self, orm_db: Any) -> None:
        """Let SQLite gather the statistics a long-lived connection needs."""
        con = connection.connect(self.path, self.synchronous)
        try:
            connection.startup_maintenance(con)
        finally:
            con.close()

    def fault(self) -> str | None:
        """Why the file cannot serve: deleted, replaced or re-pointed since opened.

        Checked through the configured path, so that a symlink pointed at
        another file (ln -sfn) is caught as well as a file moved over the
        open one: writes would go where the configured path no longer leads.
        """
        if connection.file_identity(self.configured) == self._identity:
            return None
        if self.configured.resolve() != self.path:
            return (
                f"{self.configured} now points to {self.configured.resolve()}, not "
                f"to {self.path}, the file the service opened; restart it to use "
                "the new file"
            )
        return (
            f"the database file {self.path} was deleted or replaced "
            "after the service opened it"
        )

    def closed(self) -> None:
        """Optimize and checkpoint the WAL once every connection is closed."""
        try:
            busy, wal_pages, moved = connection.shutdown_maintenance(self.path)
        except StorageError as ex:
            # A full disk or a vanished file must not turn a clean stop
            # into a crash: the WAL is recovered at the next open.
            log.warning("shutdown checkpoint skipped: %s", ex)
            return
        log.info(
            "database closed",
            extra={
                "checkpoint": {
                    "busy": busy,
                    "wal_pages": wal_pages,
                    "checkpointed": moved,
                }
            },
        )

    def event_tail(self) -> EventTail:
        """Every committed event is settled: writers take turns."""
        return SqliteTail()

    def event_watch(self, listen_url: str | None) -> ChangeWatch:
        """PRAGMA data_version on a connection of the watch's own."""
        return DataVersionWatch(self.path)

    def bind_scratch(self, orm_db: Any) -> None:
        """Bind orm_db to the file for the tooling (created when missing)."""
        orm_db.bind(provider="sqlite", filename=str(self.path), create_db=True)

    def schema_tables(self, script: str) -> tuple[Schema, Schema]:
        """The tables script creates in memory, and the file's own."""
        expected = introspection.schema_of_script(script)
        con = connection.connect(self.path)
        try:
            actual = introspection.read_schema(con)
        finally:
            con.close()
        return expected, {k: t for k, t in actual.items() if k not in TRACKING_TABLES}

    def snapshot(self) -> Snapshot:
        """The file's schema for the planner."""
        con = sqlite3.connect(self.path)
        try:
            return snapshot.snapshot_sqlite(con)
        finally:
            con.close()

    def script_snapshot(
        self,
        script: str,
        column_sql: dict[tuple[str, str], str],
        fills: dict[tuple[str, str], str],
    ) -> Snapshot:
        """The schema a DDL script creates, in memory."""
        return snapshot.script_snapshot(script, column_sql, fills)

    def wide_auto_key(self, column_sql: str) -> str:
        """Unchanged: SQLite's INTEGER PRIMARY KEY is 64-bit already."""
        return column_sql

    def literal(self, value: Any) -> str | None:
        """A stored value as an SQLite literal."""
        return snapshot.literal(value)

    def plan(self, old: Snapshot, new: Snapshot) -> Plan:
        """ALTER TABLE where it can, the 12-step rebuild where it cannot."""
        return planner.diff(old, new)
