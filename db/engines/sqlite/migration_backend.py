"""The runner on SQLite: an flock beside the file, BEGIN IMMEDIATE per file.

Each file runs in one BEGIN IMMEDIATE transaction together with its
history row, after a re-check of the history under the write lock; a
`foreign_keys=off` file has foreign keys switched off outside that
transaction and PRAGMA foreign_key_check run before COMMIT.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from db.engines.base.migration import (
    HISTORY_TABLE,
    LOG_TABLE,
    TRACKING_TABLES,
    AppliedMigration,
    Migration,
    Record,
    actor,
    now,
    shorten,
    statements_shown,
)
from db.engines.base.schema import FullSchema
from db.engines.base.sql import Dialect
from db.engines.sqlite import connection, introspection
from db.engines.sqlite.locks import migration_lock
from db.engines.sqlite.tracking import (
    ADDED_COLUMNS,
    INSERT,
    TRACKING_DDL,
    has_table,
    read_history,
    write,
)
from db.errors import MigrationError


class SqliteSession:
    """The runner's own connection to the file, under the migration lock."""

    def __init__(self, con: sqlite3.Connection):
        self._con = con

    def has_tracking(self) -> bool:
        """Whether the history table exists."""
        return has_table(self._con, HISTORY_TABLE)

    def user_tables(self) -> list[str]:
        """Tables other than SQLite's own and the tracking tables."""
        return [
            t for t in introspection.user_tables(self._con) if t not in TRACKING_TABLES
        ]

    def ensure_tracking(self) -> None:
        """Create the tracking tables, or add the columns an older one lacks."""
        if self._tracking_complete():
            return  # the common case: no write transaction at all
        with write(self._con):
            for ddl in TRACKING_DDL:
                self._con.execute(ddl)
            have = self._history_columns()
            for column, definition in ADDED_COLUMNS:
                if column not in have:
                    self._con.execute(
                        f"ALTER TABLE {HISTORY_TABLE} ADD COLUMN {column} {definition}"
                    )

    def _history_columns(self) -> set[str]:
        return {
            row[1] for row in self._con.execute(f"PRAGMA table_info({HISTORY_TABLE})")
        }

    def _tracking_complete(self) -> bool:
        have = self._history_columns()
        return (
            has_table(self._con, LOG_TABLE)
            and bool(have)
            and all(column in have for column, _ in ADDED_COLUMNS)
        )

    def history(self) -> dict[int, AppliedMigration]:
        """The history table's rows by version."""
        return read_history(self._con)

    def log_event(self, version: int | None, action: str, detail: str) -> None:
        """Write one audit row in its own small transaction."""
        with write(self._con):
            self._insert_log(version, action, detail)

    def _insert_log(self, version: int | None, action: str, detail: str) -> None:
        self._con.execute(
            f"INSERT INTO {LOG_TABLE} (at, version, action, detail) VALUES (?, ?, ?, ?)",
            (now(), version, action, f"{detail} (by {actor()})"),
        )

    def apply(self, migration: Migration) -> bool:
        """Run one file with its history row; False if another process did."""
        if migration.foreign_keys_off:
            with introspection.foreign_keys_disabled(self._con):
                return self._apply(migration)
        return self._apply(migration)

    def _apply(self, migration: Migration) -> bool:
        started = time.perf_counter()
        con = self._con
        with write(con):
            # Re-check under the write lock: another process may have won.
            done = con.execute(
                f"SELECT 1 FROM {HISTORY_TABLE} WHERE version = ?",
                (migration.version,),
            ).fetchone()
            if done:
                return False
            _execute(con, migration)
            if migration.foreign_keys_off:
                _check_foreign_keys(con, migration)
            elapsed = round((time.perf_counter() - started) * 1000, 3)
            con.execute(
                INSERT,
                (
                    migration.version,
                    migration.name,
                    migration.checksum,
                    now(),
                    elapsed,
                    "applied",
                ),
            )
        return True

    def record(self, records: list[Record], action: str, detail: str) -> None:
        """Write history rows without running the files, and one audit row each."""
        with write(self._con):
            for record in records:
                m = record.migration
                self._con.execute(
                    INSERT, (m.version, m.name, m.checksum, now(), 0.0, record.how)
                )
                self._insert_log(m.version, action, detail)

    def full_schema(self) -> FullSchema:
        """Tables, views, triggers and virtual tables, tracking tables left out."""
        return introspection.full_schema(self._con, TRACKING_TABLES)

    def set_checksum(self, version: int, checksum: str, detail: str) -> None:
        """Store a new checksum for an applied version, audited."""
        with write(self._con):
            self._con.execute(
                f"UPDATE {HISTORY_TABLE} SET checksum = ? WHERE version = ?",
                (checksum, version),
            )
            self._insert_log(version, "accept_checksum", detail)


def _execute(con: sqlite3.Connection, migration: Migration) -> None:
    for number, statement in enumerate(migration.statements, 1):
        try:
            con.execute(statement)
        except sqlite3.Error as ex:
            raise MigrationError(
                f"{migration.name} failed at statement {number} "
                f"({shorten(statement)}): {ex}"
            ) from ex


def _check_foreign_keys(con: sqlite3.Connection, migration: Migration) -> None:
    violations = introspection.foreign_key_violations(con)
    if violations:
        shown = ", ".join(
            f"{table} row {rowid} -> {parent}"
            for table, rowid, parent, _ in violations[:5]
        )
        raise MigrationError(
            f"{migration.name} leaves {len(violations)} foreign key violation(s): {shown}"
        )


class SqliteBackend:
    """Migrations on one SQLite file."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path, synchronous: str = "NORMAL"):
        self.path = path
        self.synchronous = synchronous

    def describe(self) -> str:
        """The file's path."""
        return str(self.path)

    @contextlib.contextmanager
    def session(self, lock_timeout: float) -> Iterator[SqliteSession]:
        """The flock beside the file, then the runner's own connection."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with migration_lock(self.path, lock_timeout):
            con = connection.connect(self.path, self.synchronous)
            try:
                yield SqliteSession(con)
            finally:
                con.close()

    @contextlib.contextmanager
    def _read_only(self) -> Iterator[sqlite3.Connection]:
        con = connection.connect_read_only(self.path)
        try:
            yield con
        finally:
            con.close()

    def read_history(self) -> dict[int, AppliedMigration]:
        """Read the history read-only ({} when the file does not exist)."""
        if not self.path.exists():
            return {}
        with self._read_only() as con:
            return read_history(con)

    def untracked_tables(self) -> list[str]:
        """The tables of a file that has no history table, read-only."""
        if not self.path.exists():
            return []
        with self._read_only() as con:
            session = SqliteSession(con)
            return [] if session.has_tracking() else session.user_tables()

    def read_full_schema(self) -> FullSchema:
        """The schema, read-only."""
        with self._read_only() as con:
            return introspection.full_schema(con, TRACKING_TABLES)

    def steps(self, migration: Migration) -> list[str]:
        """The runner's statements around the file's own."""
        steps = []
        if migration.foreign_keys_off:
            steps.append("PRAGMA foreign_keys = OFF  -- outside the transaction")
        steps.append("BEGIN IMMEDIATE")
        steps.append(f"-- re-check: version {migration.version} still not applied")
        steps.extend(statements_shown(migration))
        if migration.foreign_keys_off:
            steps.append("PRAGMA foreign_key_check  -- any violation rolls back")
        steps.append(f"INSERT INTO {HISTORY_TABLE} ... -- version {migration.version}")
        steps.append("COMMIT")
        if migration.foreign_keys_off:
            steps.append("PRAGMA foreign_keys = ON")
        return steps
