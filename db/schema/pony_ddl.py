"""The one place that reads Pony's DDL internals (pony 0.7.20, pinned).

Pony's public API stops at Database.schema.generate_create_script(); the
generator also needs each column's own definition (for ADD COLUMN) and
each attribute's default (the value existing rows get when a column
becomes NOT NULL). Used, and pinned by tests/db/schema/test_pony_ddl.py:

- Database.schema.tables -> Table.column_list -> Column.name, get_sql():
  one column's DDL exactly as CREATE TABLE writes it;
- Entity._attrs_ -> Attribute.columns, default, sql_default, is_collection:
  which attribute fills which column, and with what;
- Attribute.converters[0].py2sql(value): the value as the provider stores it;
- Column.is_pk, Column.converter.size: which columns are 64-bit auto keys.

One correction of Pony's output, which the engine makes: on PostgreSQL,
Pony writes SERIAL (32-bit) for every auto key, size=64 or not, while the
foreign keys to a 64-bit key are BIGINT. create_script() hands each
64-bit auto key's definition to the engine's wide_auto_key() (BIGSERIAL
there; unchanged on SQLite, whose INTEGER is 64-bit already), so ids
past 2**31 fit on both engines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pony import orm


@dataclass(frozen=True)
class ColumnDefault:
    """What the entities say a column holds when nothing is given."""

    sql: str | None = None  # sql_default: an SQL expression the DDL declares
    value: Any = None  # a constant Python default, as the provider stores it
    computed: bool = False  # a callable default: only Python knows the value


@dataclass(frozen=True)
class EntityDDL:
    """Pony's DDL for the mapped entities of one Database."""

    script: str
    column_sql: dict[tuple[str, str], str] = field(default_factory=dict)
    defaults: dict[tuple[str, str], ColumnDefault] = field(default_factory=dict)


def _default_of(attr: Any) -> ColumnDefault | None:
    if isinstance(attr.sql_default, str):
        return ColumnDefault(sql=attr.sql_default)
    default = attr.default
    if default is None:
        return None
    if callable(default):
        return ColumnDefault(computed=True)
    return ColumnDefault(value=attr.converters[0].py2sql(default))


WideKey = Callable[[str], str]  # a 64-bit auto key's column DDL, as the engine needs it


def _wide_auto_keys(orm_db: orm.Database) -> list[tuple[Any, Any]]:
    """(table, column) of every 64-bit auto key."""
    return [
        (table, column)
        for table in orm_db.schema.tables.values()
        for column in table.column_list
        if column.is_pk == "auto" and getattr(column.converter, "size", None) == 64
    ]


def _column_sql(column: Any, wide_key: WideKey | None) -> str:
    sql: str = column.get_sql()
    return wide_key(sql) if wide_key is not None else sql


def create_script(orm_db: orm.Database, wide_key: WideKey) -> str:
    """Pony's CREATE script for the mapped entities, 64-bit auto keys corrected."""
    script: str = orm_db.schema.generate_create_script()
    quote = orm_db.provider.quote_name
    for table, column in _wide_auto_keys(orm_db):
        start = script.index(f"CREATE TABLE {quote(table.name)} (")
        end = script.index(");", start)
        block = script[start:end].replace(
            column.get_sql(), _column_sql(column, wide_key), 1
        )
        script = script[:start] + block + script[end:]
    return script


def entity_ddl(orm_db: orm.Database, wide_key: WideKey) -> EntityDDL:
    """The CREATE script, each column's definition and each column's default."""
    wide = {id(column) for _, column in _wide_auto_keys(orm_db)}
    column_sql = {
        (table.name.lower(), column.name.lower()): _column_sql(
            column, wide_key if id(column) in wide else None
        )
        for table in orm_db.schema.tables.values()
        for column in table.column_list
    }
    defaults: dict[tuple[str, str], ColumnDefault] = {}
    for entity in orm_db.entities.values():
        for attr in entity._attrs_:
            if attr.is_collection or not attr.columns or len(attr.columns) != 1:
                continue
            default = _default_of(attr)
            if default is not None:
                key = (str(entity._table_).lower(), attr.columns[0].lower())
                defaults[key] = default
    return EntityDDL(create_script(orm_db, wide_key), column_sql, defaults)


DefineEntities = Callable[[orm.Database], Any]
