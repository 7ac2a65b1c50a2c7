"""The schema check: does the migrated schema match the Pony entities?

generate_mapping(check_tables=True) only notices missing tables and
columns. schema_problems() also runs Pony's own DDL for the mapped
entities on a scratch database of the same engine (SQLite: in memory;
PostgreSQL: the session's pg_temp, rolled back), introspects both sides
the same way and compares them table by table (compare.py). The service
runs check_mapping() at start-up on either engine; `check` runs
migrations_problems(), which first applies the files to a scratch
database.
"""

from __future__ import annotations

from pony import orm

from db.domain.entities import define_entities
from db.engines import engine_for
from db.engines.base.engine import Engine, ScratchSource
from db.errors import SchemaMismatchError
from db.migrations.files import Migration
from db.migrations.runner import migrate
from db.schema.compare import compare as compare
from db.schema.pony_ddl import DefineEntities, create_script

MISMATCH = "schema does not match the entities: "


def schema_problems(orm_db: orm.Database, engine: Engine) -> list[str]:
    """Every way the engine's schema differs from the entities of orm_db.

    orm_db is bound to the engine's database and mapped (generate_mapping)
    already. The tracking tables, FTS5 tables and generated columns no
    entity declares are left out. An empty list means the entities can
    run on it.
    """
    expected, actual = engine.schema_tables(create_script(orm_db, engine.wide_auto_key))
    return compare(expected, actual)


def check_mapping(orm_db: orm.Database, engine: Engine) -> None:
    """Map orm_db's entities on engine; SchemaMismatchError naming what differs."""
    try:
        orm_db.generate_mapping(create_tables=False, check_tables=True)
    except Exception as ex:  # Pony raises several unrelated types here
        raise SchemaMismatchError(f"{MISMATCH}{ex}") from ex
    problems = schema_problems(orm_db, engine)
    if problems:
        raise SchemaMismatchError(MISMATCH + "; ".join(problems))


def migrations_problems(
    migrations: list[Migration],
    source: ScratchSource,
    define: DefineEntities = define_entities,
) -> list[str]:
    """Apply the files to a scratch database of source, then compare with the entities."""
    with source.database() as scratch:
        migrate(scratch, [m for m in migrations if not m.empty], announce=False)
        engine = engine_for(scratch)
        orm_db = orm.Database()
        define(orm_db)
        engine.bind_scratch(orm_db)
        try:
            try:
                orm_db.generate_mapping(create_tables=False, check_tables=True)
            except Exception as ex:  # Pony raises several unrelated types here
                return [f"the entities cannot be mapped on the migrated schema: {ex}"]
            return schema_problems(orm_db, engine)
        finally:
            orm_db.disconnect()
