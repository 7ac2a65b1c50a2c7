"""PostgreSQL snapshots for makemigration's planner: tables plus their SQL.

The migrated side is a scratch database the runner migrated; the
entities' side is Pony's DDL for the postgres provider, run in pg_temp
on a scratch database and rolled back. Pony's statements are kept by
table: the planner writes them (CREATE TABLE, CREATE INDEX, ALTER TABLE
... ADD CONSTRAINT) rather than re-deriving DDL from introspection.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from db.engines.base import sql
from db.engines.base.migration import TRACKING_TABLES
from db.engines.base.plan import Snapshot
from db.engines.base.schema import SchemaObject
from db.engines.base.sql import sql_string
from db.engines.postgres import introspection
from db.engines.postgres.connection import connect
from db.errors import MigrationError
from db.target import PostgresTarget


def literal(value: Any) -> str | None:
    """A stored value as a PostgreSQL literal (None: no literal for it)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, str):
        return sql_string(value)
    if isinstance(value, datetime | date | time):
        return sql_string(
            value.isoformat(" ") if isinstance(value, datetime) else value.isoformat()
        )
    if isinstance(value, bytes):
        return f"'\\x{value.hex()}'::bytea"
    return None


def migrated_snapshot(target: PostgresTarget) -> Snapshot:
    """A migrated database's schema, tracking tables left out."""
    con = connect(target, "makemigration")
    try:
        schema, indexes = introspection.read_all(con, leave_out=TRACKING_TABLES)
    finally:
        con.close()
    return Snapshot(schema.tables, tuple(indexes))


def _objects(
    statements: list[str],
) -> tuple[tuple[SchemaObject, ...], dict[str, tuple[str, ...]]]:
    """Pony's statements by kind and table: CREATE TABLE/INDEX, and the rest."""
    objects: list[SchemaObject] = []
    extra: dict[str, list[str]] = {}
    for statement in statements:
        tokens = sql.significant(sql.tokenize(statement, "postgres"))
        words = [t.name for t in tokens]
        if words[:2] == ["create", "table"]:
            objects.append(
                SchemaObject("table", tokens[2].name, tokens[2].name, statement)
            )
        elif words[:1] == ["create"] and "index" in words and "on" in words:
            name = tokens[words.index("index") + 1].name
            table = tokens[words.index("on") + 1].name
            objects.append(SchemaObject("index", name, table, statement))
        elif words[:2] == ["alter", "table"]:
            extra.setdefault(tokens[2].name, []).append(statement)
        else:
            raise MigrationError(
                f"unexpected statement in Pony's DDL: {statement[:60]}"
            )
    return tuple(objects), {k: tuple(v) for k, v in extra.items()}


def script_snapshot(
    target: PostgresTarget,
    script: str,
    column_sql: dict[tuple[str, str], str],
    fills: dict[tuple[str, str], str],
) -> Snapshot:
    """The schema a DDL script creates (in pg_temp on target), and its statements."""
    statements = sql.split(script, "postgres")
    con = connect(target, "makemigration")
    try:
        schema = introspection.schema_of_script(con, statements)
    finally:
        con.close()
    objects, extra = _objects(statements)
    return Snapshot(schema.tables, objects, column_sql, fills, extra)
