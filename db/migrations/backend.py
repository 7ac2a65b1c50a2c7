"""The runner's seam: what each engine does for a migration run.

The runner (runner.py) decides what to apply; a Backend says how on its
engine: the lock that serialises runs, the transaction each file runs in,
the history tables. SQLite: an flock beside the file and BEGIN IMMEDIATE.
PostgreSQL: a session advisory lock on its own connection and
transactional DDL with per-file timeouts.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from db.domain.records import AppliedMigration
from db.engines.base import sql as sqltext
from db.engines.base.schema import FullSchema
from db.engines.base.sql import Dialect
from db.migrations.files import Migration
from db.target import DatabaseTarget, PostgresTarget, SqliteTarget

HISTORY_TABLE = "schema_migrations"
LOG_TABLE = "schema_migrations_log"
TRACKING_TABLES = (HISTORY_TABLE, LOG_TABLE)


def now() -> str:
    """The current UTC time as ISO 8601 text with milliseconds and a Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def actor() -> str:
    """host:pid, for the audit log."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Record:
    """A history row to write: a file applied, or adopted by baseline."""

    migration: Migration
    how: str = "applied"  # or 'baselined'


class Session(Protocol):
    """A locked, writable connection for one run."""

    def has_tracking(self) -> bool:
        """Whether the history table exists."""
        ...

    def user_tables(self) -> list[str]:
        """Tables other than the engine's own and the tracking tables."""
        ...

    def ensure_tracking(self) -> None:
        """Create (or upgrade) the history and log tables."""
        ...

    def history(self) -> dict[int, AppliedMigration]:
        """The history table's rows by version."""
        ...

    def apply(self, migration: Migration) -> bool:
        """Run one file with its history row; False if another process did."""
        ...

    def record(self, records: list[Record], action: str, detail: str) -> None:
        """Write history rows without running the files (baseline), audited."""
        ...

    def set_checksum(self, version: int, checksum: str, detail: str) -> None:
        """Store a new checksum for an applied version, audited."""
        ...

    def log_event(self, version: int | None, action: str, detail: str) -> None:
        """Write one audit row in its own small transaction."""
        ...

    def full_schema(self) -> FullSchema:
        """The schema, tracking tables left out, for a deep comparison."""
        ...


class Backend(Protocol):
    """One engine's rules for a migration run."""

    dialect: Dialect

    def describe(self) -> str:
        """The database, printable (never a password)."""
        ...

    def session(self, lock_timeout: float) -> AbstractContextManager[Session]:
        """Take the run's lock and open the connection the files run on."""
        ...

    def read_history(self) -> dict[int, AppliedMigration]:
        """The history without writing or locking ({} before the first run)."""
        ...

    def untracked_tables(self) -> list[str]:
        """Without writing: the tables of a database that has no history table."""
        ...

    def read_full_schema(self) -> FullSchema:
        """Without writing or locking: the schema, tracking tables left out."""
        ...

    def steps(self, migration: Migration) -> list[str]:
        """What the runner executes for one file, in order, for `migrate --plan`."""
        ...


def backend_for(target: DatabaseTarget | Path, synchronous: str = "NORMAL") -> Backend:
    """The backend for a database target (a bare Path is an SQLite file)."""
    if isinstance(target, Path):
        target = SqliteTarget(target)
    if isinstance(target, PostgresTarget):
        from db.engines.postgres.migration_backend import PostgresBackend

        return PostgresBackend(target)
    from db.engines.sqlite.migration_backend import SqliteBackend

    return SqliteBackend(target.path, synchronous)


def statements_shown(migration: Migration) -> Iterator[str]:
    """The file's statements, numbered, leading comments left out, for the plan."""
    for number, statement in enumerate(migration.statements, 1):
        tokens = sqltext.tokenize(statement, migration.dialect)
        while tokens and tokens[0].kind in ("space", "comment"):
            tokens.pop(0)
        text = "".join(t.text for t in tokens).strip().removesuffix(";").rstrip()
        yield f"[{number}] {text}"


def shorten(statement: str, width: int = 120) -> str:
    """A statement on one line, cut to width for an error message."""
    flat = " ".join(statement.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."
