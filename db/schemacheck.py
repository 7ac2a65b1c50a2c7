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

from db.dialects import sqlite, sqlite_schema
from db.entities import define_entities
from db.migrations.backend import TRACKING_TABLES
from db.migrations.files import Migration
from db.migrations.runner import migrate
from db.migrations.scratch import scratch_like
from db.schema.compare import compare as compare
from db.schema.model import Schema
from db.schema.pony_ddl import DefineEntities
from db.target import DatabaseTarget, SqliteTarget


def expected_schema(orm_db: orm.Database) -> Schema:
    """The schema Pony's own DDL creates for the mapped entities (SQLite)."""
    return sqlite_schema.schema_of_script(orm_db.schema.generate_create_script())


def actual_schema(target: DatabaseTarget) -> Schema:
    """The live schema, tracking tables left out."""
    assert isinstance(target, SqliteTarget)  # noqa: S101 - PostgreSQL: see postgres_schema
    con = sqlite.connect(target.path)
    try:
        tables = sqlite_schema.read_schema(con)
    finally:
        con.close()
    return {k: t for k, t in tables.items() if k not in TRACKING_TABLES}


def schema_problems(orm_db: orm.Database, target: DatabaseTarget | Path) -> list[str]:
    """Every way the schema at target differs from the entities of orm_db.

    orm_db must be bound to target and mapped (generate_mapping) already;
    an empty list means the entities can run on it.
    """
    if isinstance(target, Path):
        target = SqliteTarget(target)
    return compare(expected_schema(orm_db), actual_schema(target))


def migrations_problems(
    migrations: list[Migration], define: DefineEntities = define_entities
) -> list[str]:
    """Apply the files to a scratch database, then compare it with the entities."""
    with scratch_like(SqliteTarget(Path("scratch"))) as scratch:
        migrate(scratch, [m for m in migrations if not m.empty], announce=False)
        assert isinstance(scratch, SqliteTarget)  # noqa: S101
        orm_db = orm.Database()
        define(orm_db)
        orm_db.bind(provider="sqlite", filename=str(scratch.path))
        try:
            try:
                orm_db.generate_mapping(create_tables=False, check_tables=True)
            except Exception as ex:  # Pony raises several unrelated types here
                return [f"the entities cannot be mapped on the migrated schema: {ex}"]
            return schema_problems(orm_db, scratch)
        finally:
            orm_db.disconnect()
