"""The schema the entities need, from Pony's own DDL on a scratch database.

Pony's CREATE script runs on a scratch database of the same engine and
is introspected like the migrated one, so both sides of a comparison are
read the same way. The snapshot also carries what the generator needs
beyond the schema: each column's definition and the value existing rows
get when a column becomes NOT NULL.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from pony import orm

from db.engines.base.plan import Snapshot
from db.engines.base.sql import sql_string
from db.engines.sqlite import introspection as sqlite_schema
from db.errors import MigrationError
from db.migrations.backend import TRACKING_TABLES
from db.schema.pony_ddl import DefineEntities, EntityDDL, entity_ddl


def sqlite_literal(value: Any) -> str | None:
    """A stored value as an SQLite literal (None: no literal for it)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, str):
        return sql_string(value)
    if isinstance(value, datetime | date | time):
        return sql_string(
            value.isoformat(" ") if isinstance(value, datetime) else value.isoformat()
        )
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    return None


def fills(ddl: EntityDDL, literal: Any) -> dict[tuple[str, str], str]:
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


def snapshot_sqlite(
    con: sqlite3.Connection,
    column_sql: dict[tuple[str, str], str] | None = None,
    column_fills: dict[tuple[str, str], str] | None = None,
) -> Snapshot:
    """An SQLite database's schema, the tracking tables left out."""
    tables = {
        k: t
        for k, t in sqlite_schema.read_schema(con).items()
        if k not in TRACKING_TABLES
    }
    objects = tuple(
        o
        for o in sqlite_schema.schema_objects(con)
        if o.table.lower() not in TRACKING_TABLES
    )
    return Snapshot(tables, objects, column_sql or {}, column_fills or {})


def entity_ddl_sqlite(define: DefineEntities, scratch: Path) -> EntityDDL:
    """Pony's SQLite DDL for the entities define declares."""
    orm_db = orm.Database()
    try:
        define(orm_db)
        orm_db.bind(
            provider="sqlite",
            filename=str((scratch / "entities.sqlite3").resolve()),
            create_db=True,
        )
        try:
            orm_db.generate_mapping(create_tables=False, check_tables=False)
            return entity_ddl(orm_db)
        finally:
            orm_db.disconnect()
    except orm.core.OrmError as ex:
        raise MigrationError(f"the entities cannot be mapped: {ex}") from ex


def entity_snapshot_sqlite(define: DefineEntities, scratch: Path) -> Snapshot:
    """The SQLite schema Pony's own DDL creates for the entities."""
    ddl = entity_ddl_sqlite(define, scratch)
    con = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for statement in sqlite_schema.split_statements(ddl.script):
            con.execute(statement)
        return snapshot_sqlite(con, ddl.column_sql, fills(ddl, sqlite_literal))
    finally:
        con.close()
