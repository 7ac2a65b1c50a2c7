"""SQLite as the service's engine: migrate, bind, check, serve, close one file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pony import orm

from db import migrate as migrations_module
from db.engines.base.engine import (
    SNIPPET_CLOSE,
    SNIPPET_OPEN,
    SNIPPET_WORDS,
    MigrateMode,
    Row,
)
from db.engines.sqlite import connection as sqlite
from db.engines.sqlite import introspection as sqlite_schema
from db.errors import SchemaMismatchError, StartupError, StorageError
from db.migrate import Migration
from db.schema import check as schemacheck
from db.schema.pony_ddl import create_script
from db.session import SerialGate, WriteGate

log = logging.getLogger("db.database")


def fts_query(terms: list[str]) -> str:
    """Terms as an FTS5 query of quoted strings, all required.

    Each term becomes one FTS5 string ("..." with " doubled), so operators
    (AND, OR, NOT, NEAR), column filters, '*', '^', parentheses and quotes
    from users are searched as text, never parsed.
    """
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


class SqliteDialect:
    """What the domain code asks of SQLite."""

    name: Literal["sqlite"] = "sqlite"

    def lock_key(self, orm_db: Any, *key: object) -> None:
        """Nothing to do: SQLite writers already take turns (BEGIN IMMEDIATE)."""

    def search(
        self, orm_db: Any, user_id: int, terms: list[str], limit: int
    ) -> list[Row]:
        """FTS5 MATCH over messages_fts, joined to the user's memberships, by rank."""
        rows: list[Row] = orm_db.select(
            "SELECT m.id, m.conversation_id, u.handle, m.created_at, "
            "snippet(messages_fts, 0, $open_, $close, '…', $words) "
            "FROM messages_fts "
            "JOIN messages m ON m.id = messages_fts.rowid "
            "JOIN memberships mb ON mb.conversation_id = m.conversation_id "
            "AND mb.user_id = $user_id "
            "JOIN users u ON u.id = m.author_id "
            "WHERE messages_fts MATCH $query "
            "ORDER BY messages_fts.rank LIMIT $limit",
            {
                "open_": SNIPPET_OPEN,
                "close": SNIPPET_CLOSE,
                "words": SNIPPET_WORDS,
                "user_id": user_id,
                "query": fts_query(terms),
                "limit": limit,
            },
        )
        return rows


def expected_schema(orm_db: orm.Database) -> dict[str, sqlite_schema.Table]:
    """The schema Pony's own DDL creates for the mapped entities."""
    return sqlite_schema.schema_of_script(create_script(orm_db))


def check_schema(orm_db: orm.Database, path: Path) -> None:
    """Map orm_db's entities on the file at path; refuse a schema that differs.

    generate_mapping(check_tables=True) notices missing tables and columns
    only; the comparison with Pony's own DDL covers types, NOT NULL, keys,
    uniques and foreign keys.
    """
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


class SqliteEngine:
    """One SQLite file: WAL, PRAGMAs on every connection, one writer at a time."""

    dialect: SqliteDialect = SqliteDialect()

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        self.path = path.resolve()
        self.synchronous = synchronous
        self._identity: tuple[int, int] | None = None

    def describe(self) -> str:
        """The file, for logs."""
        return str(self.path)

    def migrate(self, migrations: list[Migration], mode: MigrateMode) -> None:
        """Apply pending migrations (apply), refuse any (verify), or only check (off)."""
        if mode == "off":
            if not self.path.exists():
                raise StartupError(
                    f"database file {self.path} does not exist (SERVICE_MIGRATE=off)"
                )
            # Off means "do not touch the schema", not "ignore edits".
            migrations_module.inspect(self.path, migrations)
            return
        migrations_module.migrate(
            self.path, migrations, apply=mode == "apply", synchronous=self.synchronous
        )

    def bind(self, orm_db: orm.Database) -> None:
        """Bind orm_db (entities defined, hooks installed) to the file."""
        sqlite.install_pragmas(orm_db, self.synchronous)  # before bind()
        try:
            # Absolute path: Pony resolves a relative one against the caller.
            orm_db.bind(
                provider="sqlite",
                filename=str(self.path),
                create_db=False,
                timeout=sqlite.BUSY_TIMEOUT_MS / 1000,
                # Database.close() closes every thread's connection itself.
                check_same_thread=False,
            )
        except Exception as ex:
            raise StartupError(f"cannot open {self.path}: {ex}") from ex
        self._identity = sqlite.file_identity(self.path)

    def check_schema(self, orm_db: orm.Database) -> None:
        """Map the entities; SchemaMismatchError naming what differs, if anything."""
        check_schema(orm_db, self.path)

    def gate(self, timeout: float) -> WriteGate:
        """One writer at a time in this process, waiting at most timeout."""
        return SerialGate(timeout)

    def started(self, orm_db: Any) -> None:
        """Let SQLite gather the statistics a long-lived connection needs."""
        con = sqlite.connect(self.path, self.synchronous)
        try:
            sqlite.startup_maintenance(con)
        finally:
            con.close()

    def fault(self) -> str | None:
        """Why the file cannot serve: deleted or replaced since it was opened."""
        if sqlite.file_identity(self.path) != self._identity:
            return (
                f"the database file {self.path} was deleted or replaced "
                "after the service opened it"
            )
        return None

    def closed(self) -> None:
        """Optimize and checkpoint the WAL once every connection is closed."""
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
