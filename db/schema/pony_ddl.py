"""The one place that reads Pony's DDL internals (pony 0.7.20, pinned).

Pony's public API stops at Database.schema.generate_create_script(); the
generator also needs each column's own definition (for ADD COLUMN) and
each attribute's default (the value existing rows get when a column
becomes NOT NULL). Used, and pinned by tests/test_pony_ddl.py:

- Database.schema.tables -> Table.column_list -> Column.name, get_sql():
  one column's DDL exactly as CREATE TABLE writes it;
- Entity._attrs_ -> Attribute.columns, default, sql_default, is_collection:
  which attribute fills which column, and with what;
- Attribute.converters[0].py2sql(value): the value as the provider stores it.
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


def entity_ddl(orm_db: orm.Database) -> EntityDDL:
    """The CREATE script, each column's definition and each column's default."""
    column_sql = {
        (table.name.lower(), column.name.lower()): column.get_sql()
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
    return EntityDDL(orm_db.schema.generate_create_script(), column_sql, defaults)


DefineEntities = Callable[[orm.Database], Any]
