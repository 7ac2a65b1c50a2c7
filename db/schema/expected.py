"""The schema the entities need, from Pony's own DDL on a scratch database.

Pony's CREATE script runs on a scratch database of the same engine and
is introspected like the migrated one, so both sides of a comparison are
read the same way. The snapshot also carries what the generator needs
beyond the schema: each column's definition and the value existing rows
get when a column becomes NOT NULL, as the engine writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pony import orm

from db.engines.base.engine import Engine
from db.engines.base.plan import Snapshot
from db.errors import MigrationError
from db.schema.pony_ddl import DefineEntities, EntityDDL, entity_ddl


def fills(
    ddl: EntityDDL, literal: Callable[[Any], str | None]
) -> dict[tuple[str, str], str]:
    """Column -> the SQL that fills its existing rows, where the entities give one."""
    found: dict[tuple[str, str], str] = {}
    for key, default in ddl.defaults.items():
        if default.sql is not None:
            found[key] = default.sql
        elif not default.computed:
            text = literal(default.value)
            if text is not None:
                found[key] = text
    return found


def entity_ddl_on(define: DefineEntities, engine: Engine) -> EntityDDL:
    """Pony's DDL for the entities define declares, bound to engine's scratch."""
    orm_db = orm.Database()
    try:
        define(orm_db)
        engine.bind_scratch(orm_db)
        try:
            orm_db.generate_mapping(create_tables=False, check_tables=False)
            return entity_ddl(orm_db, engine.wide_auto_key)
        finally:
            orm_db.disconnect()
    except orm.OrmError as ex:
        raise MigrationError(f"the entities cannot be mapped: {ex}") from ex


def entity_snapshot(define: DefineEntities, engine: Engine) -> Snapshot:
    """The schema Pony's own DDL creates for the entities on engine."""
    ddl = entity_ddl_on(define, engine)
    return engine.script_snapshot(
        ddl.script, ddl.column_sql, fills(ddl, engine.literal)
    )
