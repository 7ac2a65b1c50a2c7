"""What a generated migration is made of: Snapshots in, a Plan of Changes out.

Both sides of a diff arrive as Snapshots (introspected tables plus the
CREATE text of every object), and each dialect's planner
(db/engines/<engine>/planner.py) returns a Plan of reviewable Changes.
The helpers here compare tables the same way on both engines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from db.engines.base.schema import Column, SchemaObject, Table
from db.engines.base.sql import quote_identifier as q

# The value of a new NOT NULL column for the rows a table already has, when
# the entities give none: NULL fails loudly on a table that has rows (the
# runner rolls back), and is right on an empty one.
PLACEHOLDER = "NULL /* EDIT: value for the existing rows */"


@dataclass(frozen=True)
class Snapshot:
    """A schema: introspected tables plus the CREATE text of every object."""

    tables: dict[str, Table]
    objects: tuple[SchemaObject, ...]
    # The target's column definitions ('"c" TEXT NOT NULL'), for ADD COLUMN.
    column_sql: dict[tuple[str, str], str] = field(default_factory=dict)
    # SQL for the value existing rows get in a column that becomes NOT NULL:
    # the column's sql_default or the attribute's constant default. Absent
    # for a callable or missing default: a human decides (an EDIT line).
    fills: dict[tuple[str, str], str] = field(default_factory=dict)
    # The rest of the target's DDL by table (PostgreSQL: ADD CONSTRAINT ...).
    extra_sql: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def create_sql(self, key: str) -> str:
        """The CREATE TABLE statement of the table keyed key."""
        for obj in self.objects:
            if obj.type == "table" and obj.name.lower() == key:
                return obj.sql
        raise KeyError(key)

    def indexes_of(self, key: str) -> list[SchemaObject]:
        """The CREATE INDEX statements on the table keyed key."""
        return [o for o in self.objects if o.type == "index" and o.table.lower() == key]

    def fill(self, table: str, column: str) -> str | None:
        """The value for existing rows of table.column, if the entities give one."""
        return self.fills.get((table.lower(), column.lower()))


@dataclass(frozen=True)
class Change:
    """One reviewable step: comment lines, then its statements."""

    summary: str
    statements: tuple[str, ...] = ()
    details: tuple[str, ...] = ()  # one comment line per column-level change
    destructive: tuple[str, ...] = ()  # the data this step deletes or rewrites
    edits: tuple[str, ...] = ()  # what a human has to decide
    foreign_keys_off: bool = False  # a rebuild or a dropped table (SQLite)


@dataclass(frozen=True)
class Plan:
    """Every change, in the order the file applies them."""

    changes: tuple[Change, ...]
    # The file's first lines, written by the engine's planner: the runner's
    # directives its changes need, and why.
    header: tuple[str, ...] = ()

    @property
    def foreign_keys_off(self) -> bool:
        """Whether the file needs the runner's foreign-keys-off header."""
        return any(c.foreign_keys_off for c in self.changes)

    @property
    def destructive(self) -> list[str]:
        """What the plan deletes or rewrites, one line each."""
        return [line for c in self.changes for line in c.destructive]

    @property
    def edits(self) -> list[str]:
        """Where a human must decide, one line each."""
        return [line for c in self.changes for line in c.edits]


def norm(default: str | None) -> str | None:
    """A DEFAULT expression with its whitespace collapsed."""
    return None if default is None else " ".join(default.split())


def columns_text(cols: tuple[str, ...]) -> str:
    """Column names for a message, comma separated."""
    return ", ".join(cols)


def unique_sets(table: Table, origins: tuple[str, ...]) -> set[tuple[str, ...]]:
    """The column sets of the table's unique indexes of the given origins."""
    return {
        tuple(c.lower() for c in index.columns)
        for index in table.indexes
        if index.unique and index.origin in origins
    }


def foreign_keys(table: Table) -> dict[str, set[tuple[str, str, str]]]:
    """Column -> {(parent table, parent column, ON DELETE)}."""
    by_column: dict[str, set[tuple[str, str, str]]] = {}
    for fk in table.foreign_keys:
        by_column.setdefault(fk.column.lower(), set()).add(
            (fk.table.lower(), (fk.to or "").lower(), fk.on_delete)
        )
    return by_column


def describe_fk(fks: set[tuple[str, str, str]]) -> str:
    """Foreign keys for a comment line."""
    return ", ".join(f"{t}({c}) ON DELETE {d}" for t, c, d in sorted(fks)) or "(none)"


def becomes_not_null(old: Column, new: Column) -> bool:
    """Whether a kept column turns NOT NULL (a key Pony leaves implicit is not)."""
    return new.notnull and not old.notnull and not new.pk


def notnull_changed(old: Column, new: Column) -> bool:
    """Whether NOT NULL differs (a NOT NULL key Pony leaves implicit is stricter: fine)."""
    return old.notnull != new.notnull and not (old.notnull and new.pk)


def column_details(old: Column, new: Column) -> list[str]:
    """Comment lines for what changes about a kept column."""
    details: list[str] = []
    name = q(new.name)
    if old.type != new.type:
        details.append(f"column {name}: type {old.type or '(none)'} -> {new.type}")
    if notnull_changed(old, new):
        details.append(
            f"column {name}: "
            + ("NOT NULL (was nullable)" if new.notnull else "nullable (was NOT NULL)")
        )
    if norm(old.default) != norm(new.default):
        details.append(
            f"column {name}: DEFAULT {old.default or '(none)'} -> "
            f"{new.default or '(none)'}"
        )
    if old.pk != new.pk:
        details.append(f"column {name}: primary key position {old.pk} -> {new.pk}")
    return details


def rename_hint(table: str, dropped: list[str], added: list[str], how: str) -> str:
    """The EDIT line for drop + add in one table, which may be a rename."""
    return (
        f"{q(table)}: a rename cannot be told from drop + add; if "
        f"{' or '.join(dropped)} was renamed to {' or '.join(added)}, {how}"
    )


def dropped_table_hint(name: str) -> str:
    """The EDIT line for a dropped table when tables were added too."""
    return (
        f"a rename cannot be told from drop + add: if {q(name)} became "
        f"one of the added tables, replace that CREATE TABLE and this DROP "
        f'with ALTER TABLE {q(name)} RENAME TO "new name"'
    )


def destructive_lines(old: Table, new: Table) -> tuple[str, ...]:
    """The DESTRUCTIVE lines for a table's dropped columns and changed types."""
    name = q(new.name)
    lines = [
        f"drops column {name}.{q(c.name)} and its data"
        for c in old.columns
        if new.column(c.name) is None
    ]
    for column in new.columns:
        was = old.column(column.name)
        if was is not None and was.type != column.type:
            lines.append(
                f"changes the type of {name}.{q(column.name)} ({was.type or '(none)'} "
                f"-> {column.type}): values are converted"
            )
    return tuple(lines)
