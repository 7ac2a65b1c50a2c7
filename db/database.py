"""Open the database for serving: migrate, bind, map, check, close.

The composition root of db/, as service/app.py is of service/: the one
module that imports every layer. It opens the engine (db.engines),
applies the migrations (db.migrations), binds Pony with the domain's
entities, checks the schema against them (db.schema.check) and builds
the domain's stores on the result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

from pony import orm

from db.connections import Connections
from db.domain import search_index
from db.domain.conversations import Conversations
from db.domain.crud import Crud
from db.domain.entities import define_entities
from db.domain.event_feed import EventFeed
from db.domain.events import Events
from db.domain.members import Members
from db.domain.messages import Messages
from db.domain.metadata import Metadata
from db.domain.search import Search
from db.domain.search_quota import SearchQuota
from db.domain.token_uses import TokenUses
from db.domain.users import Users
from db.engines import engine_for as engine_for
from db.engines.base.engine import Engine
from db.engines.base.gates import WriteGate
from db.errors import StorageError
from db.migrations import files, runner
from db.migrations.files import Migration
from db.migrations.history import SchemaState, state
from db.schema.check import check_mapping
from db.session import begin_write, reading, writing
from db.target import SqliteTarget

log = logging.getLogger(__name__)

__all__ = ["Database", "MigrateMode", "engine_for", "open_database"]

MigrateMode = Literal["apply", "verify", "off"]


def _orm(engine: Engine, connections: Connections) -> orm.Database:
    """A Pony Database with the entities, bound through engine (not mapped yet)."""
    orm_db = orm.Database()
    connections.install(orm_db)
    define_entities(orm_db)
    engine.bind(orm_db)
    return orm_db


def run_migrations(
    engine: Engine, migrations: list[Migration], mode: MigrateMode
) -> None:
    """Apply pending migrations (apply), refuse any (verify), or only check (off)."""
    if mode == "off":
        engine.require_database()
        # Off means "do not touch the schema", not "ignore edits".
        runner.inspect(engine.migrations(), migrations)
        return
    runner.migrate(engine.migrations(), migrations, apply=mode == "apply")


@dataclass
class Database:
    """The database the service runs on: migrated, mapped and checked.

    The domain objects (metadata, users, conversations, members, messages,
    search) run inside the caller's db_session and return records, never
    entities.
    """

    engine: Engine
    orm: orm.Database
    migrations: list[Migration]
    gate: WriteGate
    connections: Connections
    close_hooks: list[Callable[[], None]] = field(default_factory=list)
    metadata: Metadata = field(init=False)
    events: Events = field(init=False)
    feed: EventFeed = field(init=False)
    users: Users = field(init=False)
    conversations: Conversations = field(init=False)
    members: Members = field(init=False)
    messages: Messages = field(init=False)
    search: Search = field(init=False)
    search_quota: SearchQuota = field(init=False)
    token_uses: TokenUses = field(init=False)

    def __post_init__(self) -> None:
        entities = self.orm.entities
        dialect = self.engine.dialect
        self.metadata = Metadata(self.orm, entities, dialect)
        self.events = Events(self.orm, entities, dialect)
        self.feed = EventFeed(self.orm, dialect, self.engine.event_tail())
        self.users = Users(self.orm, entities, dialect, self.events)
        self.conversations = Conversations(self.orm, entities, dialect, self.events)
        self.members = Members(entities, self.conversations, self.events)
        self.messages = Messages(
            self.orm, entities, self.conversations, dialect, self.events
        )
        self.search = Search(self.orm, dialect)
        self.search_quota = SearchQuota(self.orm, entities, dialect, self.writing)
        self.token_uses = TokenUses(
            entities, self.writing, lambda: dialect.now(self.orm)
        )

    def index_for_search(self) -> int:
        """Index the messages written before the search index existed (0005).

        In batches, each its own write transaction, so serving can start on
        a large database without one long lock. Returns how many it indexed.
        """
        done = 0
        with orm.db_session:  # a read first: nothing to do takes no write lock
            if not search_index.unindexed(self.orm, 1):
                return done
        while True:
            with self.writing():
                batch = search_index.unindexed(self.orm, search_index.BACKFILL_BATCH)
                for message_id, conversation_id, body in batch:
                    search_index.write(self.orm, conversation_id, message_id, body)
            done += len(batch)
            if len(batch) < search_index.BACKFILL_BATCH:
                return done

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
        begin_write(self.orm, self.gate, self.engine)

    def end_write(self) -> None:
        """Let the next writer in; call after the session that began_write ended."""
        self.gate.release()

    def writing(self) -> AbstractContextManager[None]:
        """A write transaction outside a request (jobs, commands, tests)."""
        return writing(self.orm, self.gate, self.engine)

    def reading(self) -> AbstractContextManager[None]:
        """A read-only db_session outside a request (the event stream's thread)."""
        return reading()

    def on_close(self, hook: Callable[[], None]) -> None:
        """Call hook first thing in close() (a thread that reads the database)."""
        self.close_hooks.append(hook)

    def on_write_lock_wait(self, observe: Callable[[float, bool], None]) -> None:
        """Call observe(seconds waited, acquired) on every write-lock acquisition."""
        self.gate.observe = observe

    def applied_versions(self) -> dict[int, str]:
        """Applied migration versions and checksums (inside a db_session)."""
        rows = self.orm.select("SELECT version, checksum FROM schema_migrations")
        return {int(version): str(checksum) for version, checksum in rows}

    def state(self, applied: dict[int, str]) -> SchemaState:
        """Schema state from the applied versions and their checksums."""
        return state(self.migrations, applied)

    def current_state(self) -> SchemaState:
        """Schema state read from the history table in a short session."""
        with orm.db_session:
            return self.state(self.applied_versions())

    def fault(self) -> str | None:
        """Why the database cannot serve right now, or None when it can."""
        fault: str | None = self.engine.fault()
        return fault

    def detach(self) -> None:
        """Close every connection, keeping the mapping: call before forking.

        Each forked process then opens its own connections on first use
        (Pony's pool opens new ones in a process whose pid changed); no
        connection is shared across a fork. Nothing may be in a db_session
        and no other thread may use the database meanwhile.
        """
        self.orm.disconnect()
        self.connections.close_all()

    def close(self, *, maintenance: bool = True) -> None:
        """Write pending bookkeeping, close every connection, then maintenance.

        maintenance=False skips the engine's shutdown maintenance (SQLite's
        checkpoint): a worker process leaves it to the supervisor, which
        runs it once after every worker closed.
        """
        for hook in self.close_hooks:
            hook()
        self.token_uses.close()
        self.search_quota.close()
        self.detach()
        if maintenance:
            self.engine.closed()


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
        engine = engine_for(SqliteTarget(path), synchronous=synchronous)
    migrations = files.discover(migrations_source, engine.dialect.name)
    run_migrations(engine, migrations, migrate)
    connections = Connections()
    try:
        orm_db = _orm(engine, connections)
    except BaseException:
        connections.close_all()  # whatever bind() opened before it failed
        raise
    try:
        check_mapping(orm_db, engine)
        engine.started(orm_db)
    except BaseException:
        orm_db.disconnect()
        connections.close_all()
        raise
    database = Database(
        engine, orm_db, migrations, engine.gate(write_lock_timeout), connections
    )
    try:
        database.index_for_search()
    except BaseException:
        database.close()
        raise
    return database
