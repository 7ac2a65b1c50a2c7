"""Open the database for serving: migrate, bind, map, check, close."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from pony import orm

from db import migrate as migrations_module
from db import schemacheck
from db.dialects import sqlite, sqlite_schema
from db.entities import define_entities
from db.errors import SchemaMismatchError, StartupError
from db.messaging import Messaging
from db.migrate import Migration
from db.records import SchemaState
from db.store import Store

log = logging.getLogger(__name__)

MigrateMode = Literal["apply", "verify", "off"]


class Connections:
    """Every DB-API connection Pony opened for one Database, in any thread.

    Pony keeps one connection per thread and no registry of them:
    db.disconnect() closes only the calling thread's, and the others are
    left to the garbage collector when their threads end (Python 3.13
    warns about each). Recorded from an on_connect hook (public API), they
    are all closed when the Database closes, after its threads stopped.
    """

    def __init__(self) -> None:
        self._open: list[Any] = []
        self._lock = threading.Lock()

    def install(self, orm_db: orm.Database) -> None:
        """Record each new connection of orm_db; call before bind()."""

        @orm_db.on_connect
        def _record(_db: Any, connection: Any) -> None:
            with self._lock:
                # Pony closes the connections it drops (after an error):
                # forget those, or a long-running process would hoard them.
                self._open = [c for c in self._open if not _is_closed(c)]
                self._open.append(connection)

    def close_all(self) -> None:
        """Close every recorded connection (closing one twice is harmless)."""
        with self._lock:
            opened, self._open = self._open, []
        for connection in opened:
            connection.close()


def _is_closed(connection: Any) -> bool:
    closed = getattr(connection, "closed", None)  # psycopg2
    if closed is not None:
        return bool(closed)
    try:
        connection.total_changes  # noqa: B018 - sqlite3 raises once closed
    except Exception:
        return True
    return False


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
    """The database the service runs on: migrated, mapped and checked."""

    path: Path
    orm: orm.Database
    store: Store
    migrations: list[Migration]
    write_lock: sqlite.BoundedLock
    messaging: Messaging
    connections: Connections

    def on_write_lock_wait(self, observe: Callable[[float, bool], None]) -> None:
        """Call observe(seconds waited, acquired) on every write-lock acquisition."""
        self.write_lock.observe = observe

    def state(self, applied: dict[int, str]) -> SchemaState:
        """Schema state from the applied versions and their checksums."""
        return migrations_module.state(self.migrations, applied)

    def current_state(self) -> SchemaState:
        """Schema state read from the history table in a short session."""
        with orm.db_session:
            return self.state(self.store.applied_versions())

    def close(self) -> None:
        """Close every connection, then optimize and checkpoint the WAL."""
        self.orm.disconnect()
        self.connections.close_all()
        busy, wal_pages, moved = sqlite.shutdown_maintenance(self.path)
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
        orm_db, entities = _bind(path, synchronous, connections)
    except Exception as ex:
        connections.close_all()  # bind() may have connected before it failed
        raise StartupError(f"cannot open {path}: {ex}") from ex
    try:
        check_schema(orm_db, path)
        write_lock = sqlite.bound_write_lock(orm_db, write_lock_timeout)
        con = sqlite.connect(path, synchronous)
        try:
            sqlite.startup_maintenance(con)
        finally:
            con.close()
    except BaseException:
        # No Database will own bind()'s connection: close it here, not in the GC.
        connections.close_all()
        raise
    return Database(
        path,
        orm_db,
        Store(orm_db, entities),
        migrations,
        write_lock,
        Messaging(orm_db),
        connections,
    )
