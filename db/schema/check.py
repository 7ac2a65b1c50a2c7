"""The schema check: does the migrated schema match the Pony entities?

generate_mapping(check_tables=True) only notices missing tables and
columns. schema_problems() also runs Pony's own DDL for the mapped
entities on a scratch database of the same engine and compares the two
table by table (db/schema/compare.py). The start-up check of either
engine calls schema_problems(); `check` calls migrations_problems(),
which first applies the files to a scratch database.
"""

from __future__ import annotations

from pathlib import Path

from pony import orm

from db.domain.entities import define_entities
from db.engines.base import sql as sqltext
from db.engines.base.schema import Schema
from db.engines.postgres import introspection as postgres_schema
from db.engines.postgres import locks as pg_lock
from db.engines.postgres.scratch import scratch_like
from db.engines.sqlite import connection as sqlite
from db.engines.sqlite import introspection as sqlite_schema
from db.migrations.backend import TRACKING_TABLES
from db.migrations.files import Migration
from db.migrations.runner import migrate
from db.schema.compare import compare as compare
from db.schema.pony_ddl import DefineEntities, create_script
from db.target import DatabaseTarget, PostgresTarget, SqliteTarget


def _sqlite_schemas(
    orm_db: orm.Database, target: SqliteTarget
) -> tuple[Schema, Schema]:
    expected = sqlite_schema.schema_of_script(create_script(orm_db))
    con = sqlite.connect(target.path)
    try:
        actual = sqlite_schema.read_schema(con)
    finally:
        con.close()
    return expected, {k: t for k, t in actual.items() if k not in TRACKING_TABLES}


def _postgres_schemas(
    orm_db: orm.Database, target: PostgresTarget
) -> tuple[Schema, Schema]:
    script = create_script(orm_db)
    con = pg_lock.connect(target, "schema check")
    try:
        expected = postgres_schema.schema_of_script(con, sqltext.split_postgres(script))
        actual = postgres_schema.read(con, leave_out=TRACKING_TABLES)
    finally:
        con.close()
    return expected.tables, actual.tables


def schema_problems(orm_db: orm.Database, target: DatabaseTarget | Path) -> list[str]:
    """Every way the schema at target differs from the entities of orm_db.

    For either engine: orm_db is bound to target and mapped
    (generate_mapping) already. Pony's own DDL for the mapped entities runs
    on a scratch database of the same engine (SQLite: in memory; PostgreSQL:
    this session's pg_temp, rolled back), both sides are introspected the
    same way and compared (db/schema/compare.py). The tracking tables, FTS5
    tables and generated columns no entity declares are left out. An empty
    list means the entities can run on it.
    """
    if isinstance(target, Path):
        target = SqliteTarget(target)
    if isinstance(target, PostgresTarget):
        expected, actual = _postgres_schemas(orm_db, target)
    else:
        expected, actual = _sqlite_schemas(orm_db, target)
    return compare(expected, actual)


def bind_scratch(orm_db: orm.Database, target: DatabaseTarget) -> None:
    """Bind a Pony Database to a scratch database of either engine."""
    if isinstance(target, PostgresTarget):
        orm_db.bind(provider="postgres", dsn=target.url)
    else:
        orm_db.bind(provider="sqlite", filename=str(target.path))


def migrations_problems(
    migrations: list[Migration],
    define: DefineEntities = define_entities,
    like: DatabaseTarget | None = None,
) -> list[str]:
    """Apply the files to a scratch database like `like`, then compare with the entities.

    like names the engine (and, for PostgreSQL, the server that makes the
    scratch database); SQLite when None.
    """
    with scratch_like(like or SqliteTarget(Path("scratch"))) as scratch:
        migrate(scratch, [m for m in migrations if not m.empty], announce=False)
        orm_db = orm.Database()
        define(orm_db)
        bind_scratch(orm_db, scratch)
        try:
            try:
                orm_db.generate_mapping(create_tables=False, check_tables=True)
            except Exception as ex:  # Pony raises several unrelated types here
                return [f"the entities cannot be mapped on the migrated schema: {ex}"]
            return schema_problems(orm_db, scratch)
        finally:
            orm_db.disconnect()
