"""PostgreSQL as the service's engine: Pony's postgres provider over psycopg2."""

from __future__ import annotations

import logging
from typing import Any

from pony import orm

from db import migrate as migrations_module
from db.engines.base.engine import MigrateMode
from db.engines.postgres.operations import (
    PostgresDialect,
    check_capacity,
    connect_arguments,
)
from db.errors import SchemaMismatchError, StartupError
from db.migrate import Migration
from db.schema import check as schemacheck
from db.session import OpenGate, WriteGate
from db.target import PostgresTarget

log = logging.getLogger("db.database")

# Besides one connection per worker thread (the start-up thread's is open
# already, so counted as in use): the thread that records token uses.
EXTRA_CONNECTIONS = 1


class PostgresEngine:
    """One PostgreSQL database: concurrent writers, row locks bounded by lock_timeout."""

    dialect: PostgresDialect = PostgresDialect()

    def __init__(
        self, target: PostgresTarget, *, threads: int = 8, lock_timeout: float = 5.0
    ) -> None:
        self.target = target
        self.threads = threads
        self.lock_timeout = lock_timeout

    def describe(self) -> str:
        """The URL with its password hidden."""
        return self.target.describe()

    def migrate(self, migrations: list[Migration], mode: MigrateMode) -> None:
        """Apply pending migrations (apply), refuse any (verify), or only check (off)."""
        if mode == "off":
            migrations_module.inspect(self.target, migrations)
            return
        migrations_module.migrate(self.target, migrations, apply=mode == "apply")

    def bind(self, orm_db: orm.Database) -> None:
        """Bind orm_db to the database; StartupError naming why it cannot."""
        arguments = connect_arguments(self.target.url, self.lock_timeout)
        try:
            orm_db.bind(provider="postgres", **arguments)
        except Exception as ex:
            # psycopg2 names host, port, user and database, never the password.
            reason = " ".join(str(ex).split())
            raise StartupError(f"cannot connect to {self.describe()}: {reason}") from ex

    def check_schema(self, orm_db: orm.Database) -> None:
        """Map the entities; SchemaMismatchError naming what differs, if anything."""
        try:
            orm_db.generate_mapping(create_tables=False, check_tables=True)
        except Exception as ex:
            raise SchemaMismatchError(
                f"schema does not match the entities: {ex}"
            ) from ex
        problems = schemacheck.schema_problems(orm_db, self.target)
        if problems:
            raise SchemaMismatchError(
                "schema does not match the entities: " + "; ".join(problems)
            )

    def started(self, orm_db: Any) -> None:
        """Refuse to serve when the server cannot give every thread a connection."""
        with orm.db_session:
            check_capacity(orm_db, self.threads + EXTRA_CONNECTIONS)

    def gate(self, timeout: float) -> WriteGate:
        """PostgreSQL orders concurrent writers itself (row locks, lock_timeout)."""
        return OpenGate()

    def fault(self) -> str | None:
        """Nothing to watch between requests: a lost server shows as errors."""
        return None

    def closed(self) -> None:
        """Nothing to maintain: PostgreSQL checkpoints on its own."""
        log.info("database closed")
