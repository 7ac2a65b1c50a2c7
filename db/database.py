"""Open the database for serving: migrate, bind, map, check, close."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path

from pony import orm

from db import migrate as migrations_module
from db.connections import Connections
from db.domain.conversations import Conversations
from db.domain.crud import Crud
from db.domain.entities import define_entities
from db.domain.messages import Messages
from db.domain.metadata import Metadata
from db.domain.records import SchemaState
from db.domain.search import Search
from db.domain.token_uses import TokenUses
from db.domain.users import Users
from db.engines.base.engine import Engine, MigrateMode
from db.engines.sqlite.engine import SqliteEngine, check_schema
from db.errors import SchemaMismatchError, StorageError
from db.migrate import Migration
from db.session import WriteGate, begin_write, writing
from db.target import DatabaseTarget, PostgresTarget

log = logging.getLogger(__name__)

__all__ = ["Database", "check_schema", "entity_schema_problems", "open_database"]


def _orm(engine: Engine, connections: Connections) -> orm.Database:
    """A Pony Database with the entities, bound through engine (not mapped yet)."""
    orm_db = orm.Database()
    connections.install(orm_db)
    define_entities(orm_db)
    engine.bind(orm_db)
    return orm_db


def entity_schema_problems(migrations: list[Migration], scratch: Path) -> list[str]:
    """Apply every migration to a scratch file and compare with the entities."""
    engine = SqliteEngine(scratch)
    engine.migrate(migrations, "apply")
    connections = Connections()
    try:
        orm_db = _orm(engine, connections)
    except BaseException:
        connections.close_all()  # whatever bind() opened before it failed
        raise
    try:
        engine.check_schema(orm_db)
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

    engine: Engine
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

    def __post_init__(self) -> None:
        entities = self.orm.entities
        dialect = self.engine.dialect
        self.metadata = Metadata(self.orm, entities, dialect)
        self.users = Users(self.orm, entities)
        self.conversations = Conversations(self.orm, entities)
        self.messages = Messages(self.orm, entities, self.conversations, dialect)
        self.search = Search(self.orm, dialect)
        self.token_uses = TokenUses(entities, self.writing)

    def crud(self, entity: str) -> Crud:
        """Create, read, page, change and delete rows of the entity called so."""
        return Crud(self.orm.entities[entity])

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
        fault: str | None = self.engine.fault()
        return fault

    def close(self) -> None:
        """Write pending bookkeeping, close every connection, then maintenance."""
        self.token_uses.close()
        self.orm.disconnect()
        self.connections.close_all()
        self.engine.closed()


def engine_for(
    target: DatabaseTarget,
    *,
    synchronous: str = "NORMAL",
    threads: int = 8,
    lock_timeout: float = 5.0,
) -> Engine:
    """The engine for a target: an SQLite file or a PostgreSQL database."""
    if isinstance(target, PostgresTarget):
        # Imported here: psycopg2 is loaded only when PostgreSQL is in use.
        from db.engines.postgres.engine import PostgresEngine

        return PostgresEngine(target, threads=threads, lock_timeout=lock_timeout)
    return SqliteEngine(target.path, synchronous)


def open_database(
    path: Path | None = None,
    *,
    engine: Engine | None = None,
    migrate: MigrateMode = "apply",
    migrations_source: Traversable | Path | None = None,
    synchronous: str = "NORMAL",
    write_lock_timeout: float = 5.0,
) -> Database:
    """Migrate (or verify) the database, map the entities, check the schema.

    The database is engine, or else the SQLite file at path. Raises
    StartupError (MigrationError, SchemaMismatchError) with one line naming
    the cause.
    """
    if engine is None:
        if path is None:
            raise TypeError("open_database() needs a path or an engine")
        engine = SqliteEngine(path, synchronous)
    migrations = migrations_module.discover(migrations_source, engine.dialect.name)
    engine.migrate(migrations, migrate)
    connections = Connections()
    try:
        orm_db = _orm(engine, connections)
    except BaseException:
        connections.close_all()  # whatever bind() opened before it failed
        raise
    try:
        engine.check_schema(orm_db)
        engine.started(orm_db)
    except BaseException:
        orm_db.disconnect()
        connections.close_all()
        raise
    return Database(
        engine, orm_db, migrations, engine.gate(write_lock_timeout), connections
    )
