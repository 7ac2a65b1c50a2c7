"""SQLite schema introspection, into the model of db/engines/base/schema.py.

What PRAGMA table_xinfo, index_list and foreign_key_list say about each
table, the views, triggers and virtual tables by their SQL, and the
foreign-key switch around rebuilds.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

from db.engines.base import sql
from db.engines.base.schema import (
    Column,
    ForeignKey,
    FullSchema,
    Index,
    SchemaObject,
    Table,
)
from db.engines.base.sql import quote_identifier


@contextlib.contextmanager
def foreign_keys_disabled(con: sqlite3.Connection) -> Iterator[None]:
    """Switch foreign keys off around a table rebuild and restore them.

    The PRAGMA is a no-op inside a transaction, so this must wrap BEGIN.
    """
    previous = con.execute("PRAGMA foreign_keys").fetchone()[0]
    con.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        con.execute(f"PRAGMA foreign_keys = {'ON' if previous else 'OFF'}")


def foreign_key_violations(con: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Rows of PRAGMA foreign_key_check: (table, rowid, parent, fk index)."""
    return [tuple(row) for row in con.execute("PRAGMA foreign_key_check")]


def user_tables(con: sqlite3.Connection) -> list[str]:
    """Names of the tables SQLite did not create for itself."""
    return [
        row[0]
        for row in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]


def _table_list(con: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """PRAGMA table_list (SQLite 3.37+); [] on an older SQLite."""
    try:
        return [tuple(r) for r in con.execute("PRAGMA table_list")]
    except sqlite3.DatabaseError:
        return []


def virtual_tables(con: sqlite3.Connection) -> set[str]:
    """Lower-cased names of virtual tables (FTS5 ...) and their shadow tables.

    No entity can declare these (Pony has no virtual tables), so the schema
    check and makemigration leave them out: otherwise the generator would
    plan a DROP TABLE for a hand-written FTS index. PRAGMA table_list (SQLite
    3.37+) says which tables are 'virtual' or 'shadow'; on an older SQLite
    the shadow tables are taken to be those named after a virtual table plus
    an underscore suffix, which is how FTS5, FTS3 and R*Tree name them.
    """
    rows = _table_list(con)
    if rows:
        return {
            str(r[1]).lower()
            for r in rows
            if r[0] == "main" and r[2] in ("virtual", "shadow")
        }
    names = [
        str(r[0]).lower()
        for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND sql LIKE 'CREATE VIRTUAL TABLE%'"
        )
    ]
    found = set(names)
    for table in user_tables(con):
        if any(table.lower().startswith(v + "_") for v in names):
            found.add(table.lower())
    return found


def read_schema(con: sqlite3.Connection) -> dict[str, Table]:
    """Introspect every user table but virtual ones, keyed by lower-cased name."""
    schema: dict[str, Table] = {}
    virtual = virtual_tables(con)
    for name in user_tables(con):
        if name.lower() in virtual:
            continue
        quoted = quote_identifier(name)
        columns = tuple(
            Column(r[1], " ".join(str(r[2]).upper().split()), bool(r[3]), r[4], r[5])
            for r in con.execute(f"PRAGMA table_xinfo({quoted})")
            if r[6] == 0  # hidden == 0: ordinary columns only
        )
        indexes = []
        for _seq, index_name, unique, origin, _partial in con.execute(
            f"PRAGMA index_list({quoted})"
        ):
            cols = tuple(
                r[2]
                for r in con.execute(
                    f"PRAGMA index_info({quote_identifier(index_name)})"
                )
            )
            indexes.append(Index(index_name, cols, bool(unique), origin))
        foreign_keys = tuple(
            ForeignKey(r[3], r[2], r[4], r[6].upper())
            for r in con.execute(f"PRAGMA foreign_key_list({quoted})")
        )
        create = con.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()[0]
        schema[name.lower()] = Table(
            name,
            columns,
            tuple(sorted(indexes, key=lambda i: i.name)),
            foreign_keys,
            has_autoincrement(create or ""),
        )
    return schema


def full_schema(con: sqlite3.Connection, leave_out: tuple[str, ...] = ()) -> FullSchema:
    """The tables, and every view, trigger and virtual table by name (baseline)."""
    tables = {k: t for k, t in read_schema(con).items() if k not in leave_out}
    virtual = virtual_tables(con)
    shadow = {
        str(r[1]).lower()
        for r in _table_list(con)
        if r[0] == "main" and r[2] == "shadow"
    }
    others = {
        str(row[1]).lower(): SchemaObject(row[0], row[1], row[2], row[3])
        for row in con.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE type IN ('view', 'trigger', 'table') AND sql IS NOT NULL "
            "AND name NOT LIKE 'sqlite_%'"
        )
        if row[0] != "table"
        or (str(row[1]).lower() in virtual and str(row[1]).lower() not in shadow)
    }
    return FullSchema(tables, others)


def schema_of_script(script: str) -> dict[str, Table]:
    """Introspect the schema a DDL script creates, on a scratch database."""
    con = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for statement in sql.split(script, "sqlite"):
            con.execute(statement)
        return read_schema(con)
    finally:
        con.close()


def schema_objects(con: sqlite3.Connection) -> list[SchemaObject]:
    """User tables, indexes, triggers and views in creation order.

    Automatic indexes (UNIQUE and PRIMARY KEY constraints) have no SQL of
    their own and are left out; read_schema() reports them. So are virtual
    tables and their shadow tables (see virtual_tables()); triggers that
    keep them in step stay, so a rebuild recreates them.
    """
    virtual = virtual_tables(con)
    return [
        SchemaObject(row[0], row[1], row[2], row[3])
        for row in con.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        )
        if not (row[0] == "table" and str(row[1]).lower() in virtual)
    ]


# ALTER TABLE ADD COLUMN refuses these defaults ("non-constant default").
_NON_CONSTANT_DEFAULT = re.compile(
    r"^\s*(\(|CURRENT_TIME\b|CURRENT_DATE\b|CURRENT_TIMESTAMP\b)", re.I
)


def is_constant_default(default: str | None) -> bool:
    """Whether ALTER TABLE ADD COLUMN accepts this DEFAULT expression."""
    return default is None or not _NON_CONSTANT_DEFAULT.match(default)


def has_autoincrement(create_table_sql: str) -> bool:
    """Whether a CREATE TABLE statement declares an AUTOINCREMENT key."""
    return (
        re.search(
            r"\bAUTOINCREMENT\b", sql.strip_comments(create_table_sql, "sqlite"), re.I
        )
        is not None
    )
