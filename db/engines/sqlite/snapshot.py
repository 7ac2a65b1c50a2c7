"""SQLite snapshots for makemigration's planner: tables plus their SQL.

The migrated side is a scratch file the runner migrated; the entities'
side is Pony's DDL run on an in-memory database. Both are introspected
the same way (introspection.py), the tracking tables left out.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from db.engines.base import sql
from db.engines.base.migration import TRACKING_TABLES
from db.engines.base.plan import Snapshot
from db.engines.base.sql import sql_string
from db.engines.sqlite import introspection


def literal(value: Any) -> str | None:
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


def snapshot_sqlite(
    con: sqlite3.Connection,
    column_sql: dict[tuple[str, str], str] | None = None,
    column_fills: dict[tuple[str, str], str] | None = None,
) -> Snapshot:
    """An SQLite database's schema, the tracking tables left out."""
    tables = {
        k: t
        for k, t in introspection.read_schema(con).items()
        if k not in TRACKING_TABLES
    }
    objects = tuple(
        o
        for o in introspection.schema_objects(con)
        if o.table.lower() not in TRACKING_TABLES
    )
    return Snapshot(tables, objects, column_sql or {}, column_fills or {})


def script_snapshot(
    script: str,
    column_sql: dict[tuple[str, str], str],
    fills: dict[tuple[str, str], str],
) -> Snapshot:
    """The schema a DDL script creates, on an in-memory database."""
    con = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for statement in sql.split(script, "sqlite"):
            con.execute(statement)
        return snapshot_sqlite(con, column_sql, fills)
    finally:
        con.close()
