"""What a schema is made of, the same on both engines.

Each engine's introspection (db/engines/sqlite/introspection.py,
db/engines/postgres/introspection.py) fills these; the comparisons and the
generator read them without knowing where they came from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """A column: its declared type as the engine reports it, NOT NULL, DEFAULT."""

    name: str
    type: str
    notnull: bool
    default: str | None
    pk: int  # position in the primary key, 0 when not part of it


@dataclass(frozen=True)
class ForeignKey:
    """One column of a foreign key."""

    column: str
    table: str
    to: str
    on_delete: str
    name: str = ""  # the constraint's name where the engine keeps one (PostgreSQL)


@dataclass(frozen=True)
class Index:
    """An index: its columns, whether it is unique, and where it came from."""

    name: str
    columns: tuple[str, ...]
    unique: bool
    origin: str  # 'c' CREATE INDEX, 'u' UNIQUE constraint, 'pk' primary key


@dataclass(frozen=True)
class Table:
    """One table's columns, indexes and foreign keys."""

    name: str
    columns: tuple[Column, ...]
    indexes: tuple[Index, ...]
    foreign_keys: tuple[ForeignKey, ...]
    autoincrement: bool = False  # SQLite's AUTOINCREMENT: ids are never reused

    def column(self, name: str) -> Column | None:
        """The column called name, compared case-insensitively."""
        for column in self.columns:
            if column.name.lower() == name.lower():
                return column
        return None


@dataclass(frozen=True)
class SchemaObject:
    """One CREATE statement: a table, index, trigger or view and its SQL."""

    type: str  # 'table', 'index', 'trigger' or 'view'
    name: str
    table: str  # the table an index or trigger belongs to
    sql: str


Schema = dict[str, Table]  # keyed by lower-cased table name


@dataclass(frozen=True)
class FullSchema:
    """Everything two databases must share to count as the same schema.

    The tables, plus the objects no entity describes (views, triggers,
    virtual tables, generated columns) by name, as SQL text.
    """

    tables: Schema
    others: dict[str, SchemaObject]
