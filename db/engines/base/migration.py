"""What the runner hands an engine's migration backend, and what it gets back.

The runner (db/migrations/runner.py) decides what to apply; a Backend
says how on its engine: the lock that serialises runs, the transaction
each file runs in, the history tables. SQLite: an flock beside the file
and BEGIN IMMEDIATE. PostgreSQL: a session advisory lock on its own
connection and transactional DDL with per-file timeouts. Both speak the
types here: a Migration (one file, read and checked), its Header, the
history's rows.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from db.engines.base import sql
from db.engines.base.schema import FullSchema
from db.engines.base.sql import DIALECTS, Dialect

HISTORY_TABLE = "schema_migrations"
LOG_TABLE = "schema_migrations_log"
TRACKING_TABLES = (HISTORY_TABLE, LOG_TABLE)


@dataclass(frozen=True)
class Header:
    """What a file's header asks of the runner and the lint."""

    foreign_keys_off: bool = False  # SQLite rebuilds: FKs off outside the transaction
    destructive: bool = False  # a reviewer acknowledged the data this file deletes
    transaction: bool = True  # False: PostgreSQL runs the one statement on its own
    lock_timeout: str | None = None  # PostgreSQL lock_timeout for this file
    statement_timeout: str | None = None  # PostgreSQL statement_timeout for this file

    def modes(self) -> list[str]:
        """The directives in effect, as written, for `migrate --plan`."""
        modes = []
        if self.foreign_keys_off:
            modes.append("foreign_keys=off")
        if not self.transaction:
            modes.append("transaction=off")
        if self.lock_timeout is not None:
            modes.append(f"lock_timeout={self.lock_timeout}")
        if self.statement_timeout is not None:
            modes.append(f"statement_timeout={self.statement_timeout}")
        if self.destructive:
            modes.append("destructive")
        return modes


@dataclass(frozen=True)
class Migration:
    """One migration file, read and checked for the dialect it will run on."""

    version: int
    name: str  # the file name, e.g. 0001_create_app_metadata.sql
    sql: str
    checksum: str
    header: Header
    statements: tuple[str, ...]
    dialect: Dialect = "sqlite"  # the engine this file was read for
    file_dialect: Dialect | None = None  # None: one file for every engine

    @property
    def foreign_keys_off(self) -> bool:
        """Whether the runner turns SQLite's foreign keys off around it."""
        return self.header.foreign_keys_off

    @property
    def stem(self) -> str:
        """The name without dialect suffix and .sql: the version's identity."""
        return stem_of(self.name)

    @property
    def empty(self) -> bool:
        """A file with comments only (just made by `new`): no SQL yet."""
        return not self.statements


def stem_of(file_name: str) -> str:
    """0001_x.sqlite.sql, 0001_x.postgres.sql and 0001_x.sql all give 0001_x."""
    stem = file_name.removesuffix(".sql")
    for dialect in DIALECTS:
        stem = stem.removesuffix(f".{dialect}")
    return stem


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """A row of the schema_migrations history table."""

    version: int
    name: str
    checksum: str
    applied_at: str
    execution_ms: float
    how: str = "applied"  # or 'baselined': recorded by `baseline`, not run


@dataclass(frozen=True)
class Record:
    """A history row to write: a file applied, or adopted by baseline."""

    migration: Migration
    how: str = "applied"  # or 'baselined'


def now() -> str:
    """The current UTC time as ISO 8601 text with milliseconds and a Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def actor() -> str:
    """host:pid, for the audit log."""
    return f"{socket.gethostname()}:{os.getpid()}"


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


def statements_shown(migration: Migration) -> Iterator[str]:
    """The file's statements, numbered, leading comments left out, for the plan."""
    for number, statement in enumerate(migration.statements, 1):
        tokens = sql.tokenize(statement, migration.dialect)
        while tokens and tokens[0].kind in ("space", "comment"):
            tokens.pop(0)
        text = "".join(t.text for t in tokens).strip().removesuffix(";").rstrip()
        yield f"[{number}] {text}"


def shorten(statement: str, width: int = 120) -> str:
    """A statement on one line, cut to width for an error message."""
    flat = " ".join(statement.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


class Rules(Protocol):
    """One engine's reading of a file: its statements, or MigrationError."""

    def check(self, name: str, text: str, header: Header) -> list[str]:
        """Split text into statements and refuse what the engine cannot run."""
        ...
