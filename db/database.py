"""Open the database for serving: migrate, bind, map, check, close."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from pony import orm

from db import migrate as migrations_module
from db import schemacheck
from db.connections import Connections
from db.conversations import Conversations
from db.dialects import sqlite, sqlite_schema
from db.entities import define_entities
from db.errors import SchemaMismatchError, StartupError, StorageError
from db.messages import Messages
from db.metadata import Metadata
from db.migrate import Migration
from db.records import SchemaState
from db.search import Search
from db.session import SerialGate, WriteGate, begin_write, writing
from db.token_uses import TokenUses
from db.users import Users

log = logging.getLogger(__name__)

MigrateMode = Literal["apply", "verify", "off"]


def _bind(
    path: Path, synchronous: str, connections: Connections | None = None
) -> tuple[orm.Database, dict[str, Any]]:
    orm_db = orm.Database()
    sqlite.install_pragmas(orm_db, synchronous)  # before bind(): see the reference
    if connections is not None:
        connections.install(orm_db)
    entities = define_entities(orm_db)
    # Absolute path: Pony resolves a relative one against the calling module.
    orm_db.bind(
        provider="sqlite",
        filename=str(path.resolve()),
        create_db=False,
        timeout=sqlite.BUSY_TIMEOUT_MS / 1000,
        # Database.close() closes every thread's connection from its own thread.
        check_same_thread=False,
    )
    return orm_db, entities


def expected_schema(orm_db: orm.Database) -> dict[str, sqlite_schema.Table]:
    """The schema Pony's own DDL creates for the mapped entities."""
    return sqlite_schema.schema_of_script(orm_db.schema.generate_create_script())


def check_schema(orm_db: orm.Database, path: Path) -> None:
    """Refuse a database whose schema differs from the entities'."""
    try:
        orm_db.generate_mapping(create_tables=False, check_tables=True)
    except Exception as ex:
        raise SchemaMismatchError(f"schema does not match the entities: {ex}") from ex
    con = sqlite.connect(path)
    try:
        actual = sqlite_schema.read_schema(con)
    finally:
        con.close()
    problems = schemacheck.compare(expected_schema(orm_db), actual)
    if problems:
        raise SchemaMismatchError(
            "schema does not match the entities: " + "; ".join(problems)
        )


def entity_schema_problems(migrations: list[Migration], scratch: Path) -> list[str]:
    """Apply every migration to a scratch file and compare with the entities."""
    migrations_module.migrate(scratch, migrations)
    connections = Connections()
    orm_db, _ = _bind(scratch, "NORMAL", connections)
    try:
        check_schema(orm_db, scratch)
    except SchemaMismatchError as ex:
        return str(ex).split(": ", 1)[1].split("; ")
    finally:
        orm_db.disconnect()
        connections.close_all()
    return []


@dataclass
class Database:
    """The database the service runs on: migrated, mapped and checked.

    The domain objects (metadata, users, conversations, messages, search)
    run inside the caller's db_session and return records, never entities.
    """

    path: Path
    orm: orm.Database
    migrations: list[Migration]
    gate: WriteGate
    connections: Connections
    metadata: Metadata = field(init=False)
    users: Users = field(init=False)
    conversations: Conversations = field(init=False)
    messages: Messages = field(init=False)
    search: Search = field(init=False)
    token_uses: TokenUses = field(init=False)
    _identity: tuple[int, int] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        entities = self.orm.entities
        dialect = sqlite.SqliteDialect()
        self.metadata = Metadata(self.orm, entities, dialect)
        self.users = Users(self.orm, entities)
        self.conversations = Conversations(self.orm, entities)
        self.messages = Messages(self.orm, entities, self.conversations)
        self.search = Search(self.orm, dialect)
        self.token_uses = TokenUses(entities, self.writing)
        self._identity = sqlite.file_identity(self.path)

    def begin_write(self) -> None:
        """Start the current db_session's write transaction (bounded wait).

        StorageError instead when the file was deleted or replaced: the
        write would go where nobody reads it again.
        """
        fault = self.fault()
        if fault is not None:
            raise StorageError(fault)
        begin_write(self.orm, self.gate)

    def end_write(self) -> None:
        """Let the next writer in; call after the session that began_write ended."""
        self.gate.release()

    def writing(self) -> AbstractContextManager[None]:
        """A write transaction outside a request (jobs, commands, tests)."""
        return writing(self.orm, self.gate)

    def on_write_lock_wait(self, observe: Callable[[float, bool], None]) -> None:
        """Call observe(seconds waited, acquired) on every write-lock acquisition."""
        self.gate.observe = observe

    def applied_versions(self) -> dict[int, str]:
        """Applied migration versions and checksums (inside a db_session)."""
        rows = self.orm.select("SELECT version, checksum FROM schema_migrations")
        return {int(version): str(checksum) for version, checksum in rows}

    def state(self, applied: dict[int, str]) -> SchemaState:
        """Schema state from the applied versions and their checksums."""
        return migrations_module.state(self.migrations, applied)

    def current_state(self) -> SchemaState:
        """Schema state read from the history table in a short session."""
        with orm.db_session:
            return self.state(self.applied_versions())

    def fault(self) -> str | None:
        """Why the database cannot serve right now, or None when it can."""
        if sqlite.file_identity(self.path) != self._identity:
            return (
                f"the database file {self.path} was deleted or replaced "
                "after the service opened it"
            )
        return None

    def close(self) -> None:
        """Write pending bookkeeping, close every connection, checkpoint the WAL."""
        self.token_uses.close()
        self.orm.disconnect()
        self.connections.close_all()
        try:
            busy, wal_pages, moved = sqlite.shutdown_maintenance(self.path)
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


def open_database(
    path: Path,
    *,
    migrate: MigrateMode = "apply",
    migrations_source: Traversable | Path | None = None,
    synchronous: str = "NORMAL",
    write_lock_timeout: float = 5.0,
) -> Database:
    """Migrate (or verify) the file at path, map the entities, check the schema.

    Raises StartupError (MigrationError, SchemaMismatchError) with one line
    naming the cause.
    """
    path = path.resolve()
    migrations = migrations_module.discover(migrations_source)
    if migrate == "off":
        if not path.exists():
            raise StartupError(
                f"database file {path} does not exist (SERVICE_MIGRATE=off)"
            )
        # Off means "do not touch the schema", not "ignore edits": still refuse them.
        migrations_module.inspect(path, migrations)
    else:
        migrations_module.migrate(
            path, migrations, apply=migrate == "apply", synchronous=synchronous
        )
    connections = Connections()
    try:
        orm_db, _ = _bind(path, synchronous, connections)
    except Exception as ex:
        raise StartupError(f"cannot open {path}: {ex}") from ex
    try:
        check_schema(orm_db, path)
        con = sqlite.connect(path, synchronous)
        try:
            sqlite.startup_maintenance(con)
        finally:
            con.close()
    except BaseException:
        orm_db.disconnect()
        connections.close_all()
        raise
    return Database(
        path, orm_db, migrations, SerialGate(write_lock_timeout), connections
    )
