"""Plan the PostgreSQL migration that takes the migrated schema to the entities'.

Pure, like SQLite's planner, but PostgreSQL's ALTER TABLE does everything
in place: no rebuilds. New tables, indexes and foreign keys are written
with Pony's own statements; column changes are ALTER COLUMN ... TYPE /
SET NOT NULL / SET DEFAULT; existing rows of a column that becomes NOT
NULL are filled with the entities' constant default, or wait for a human
(an EDIT line) when there is none.
"""

from __future__ import annotations

import re
from dataclasses import replace

from db.engines.base.plan import (
    PLACEHOLDER,
    Change,
    Plan,
    Snapshot,
    becomes_not_null,
    column_details,
    dropped_table_hint,
    norm,
    rename_hint,
)
from db.engines.base.schema import Column, Table
from db.engines.base.sql import quote_identifier as q
from db.engines.postgres.planner_keys import constraints, fk_statement, indexes

# Where the type ends in one of Pony's column definitions.
_CONSTRAINT = re.compile(
    r"\s+(NOT NULL|NULL|DEFAULT|UNIQUE|PRIMARY KEY|CHECK|REFERENCES)\b", re.I
)


def _type_of(column_sql: str) -> str:
    """'"c" VARCHAR(32) UNIQUE NOT NULL' -> 'VARCHAR(32)'."""
    rest = column_sql.split('" ', 1)[1] if column_sql.startswith('"') else column_sql
    return _CONSTRAINT.split(rest, maxsplit=1)[0].strip()


def _add_column(new: Snapshot, key: str, table: str, column: Column) -> Change:
    sql = new.column_sql[(key, column.name.lower())]
    statements = []
    edits: tuple[str, ...] = ()
    if column.notnull and column.default is None and not column.pk:
        fill = new.fill(key, column.name)
        if fill is None:
            fill = PLACEHOLDER
            edits = (
                f"{table}.{q(column.name)} is NOT NULL and the entities give no "
                "constant default for it: replace the NULL placeholder with a value "
                "for the existing rows (or give the attribute a constant default)",
            )
        # The default fills the existing rows, then goes: the entities declare none.
        statements.append(f"ALTER TABLE {table} ADD COLUMN {sql} DEFAULT {fill}")
        statements.append(
            f"ALTER TABLE {table} ALTER COLUMN {q(column.name)} DROP DEFAULT"
        )
    else:
        statements.append(f"ALTER TABLE {table} ADD COLUMN {sql}")
    fk = fk_statement(new, key, column.name)
    if fk:
        statements.append(fk)
    return Change(
        f"add column {table}.{q(column.name)}", tuple(statements), edits=edits
    )


def _alter_column(
    new: Snapshot, key: str, table: str, was: Column, column: Column
) -> Change | None:
    details = column_details(was, column)
    if not details:
        return None
    name = q(column.name)
    statements: list[str] = []
    edits: list[str] = []
    if was.type != column.type:
        new_type = _type_of(new.column_sql[(key, column.name.lower())])
        statements.append(
            f"ALTER TABLE {table} ALTER COLUMN {name} TYPE {new_type} USING {name}::{new_type}"
        )
    if norm(was.default) != norm(column.default):
        statements.append(
            f"ALTER TABLE {table} ALTER COLUMN {name} "
            + (f"SET DEFAULT {column.default}" if column.default else "DROP DEFAULT")
        )
    if becomes_not_null(was, column):
        fill = new.fill(key, column.name) or column.default
        if fill is not None:
            statements.append(
                f"UPDATE {table} SET {name} = {fill} WHERE {name} IS NULL"
            )
        else:
            edits.append(
                f"{table}.{name} becomes NOT NULL and the entities give no constant "
                f"default for it: rows where it is NULL make SET NOT NULL fail; add "
                f"UPDATE {table} SET {name} = <value> WHERE {name} IS NULL before it"
            )
        statements.append(f"ALTER TABLE {table} ALTER COLUMN {name} SET NOT NULL")
    elif was.notnull and not column.notnull and not column.pk:
        statements.append(f"ALTER TABLE {table} ALTER COLUMN {name} DROP NOT NULL")
    retyped = (
        (
            f"changes the type of {table}.{name} ({was.type} -> {column.type}): values are converted",
        )
        if was.type != column.type
        else ()
    )
    return Change(
        f"change column {table}.{name}",
        tuple(statements),
        tuple(details),
        retyped,
        tuple(edits),
    )


def _table_changes(old: Snapshot, new: Snapshot, key: str) -> list[Change]:
    old_t: Table = old.tables[key]
    new_t: Table = new.tables[key]
    table = q(new_t.name)
    changes: list[Change] = []
    dropped = [c for c in old_t.columns if new_t.column(c.name) is None]
    added = [c for c in new_t.columns if old_t.column(c.name) is None]
    index_changes = indexes(old, new, key, table)
    key_changes = constraints(old, new, key, table)
    changes += [c for c in index_changes + key_changes if c.summary.startswith("drop")]
    for column in dropped:
        changes.append(
            Change(
                f"drop column {table}.{q(column.name)}",
                (f"ALTER TABLE {table} DROP COLUMN {q(column.name)}",),
                destructive=(f"drops column {table}.{q(column.name)} and its data",),
            )
        )
    changes += [_add_column(new, key, table, c) for c in added]
    for column in new_t.columns:
        was = old_t.column(column.name)
        change = _alter_column(new, key, table, was, column) if was else None
        if change:
            changes.append(change)
    changes += [
        c for c in key_changes + index_changes if not c.summary.startswith("drop")
    ]
    if dropped and added and changes:
        hint = rename_hint(
            new_t.name,
            [q(c.name) for c in dropped],
            [q(c.name) for c in added],
            f'replace the DROP and the ADD with ALTER TABLE {table} RENAME COLUMN "old" TO "new"',
        )
        changes[0] = replace(changes[0], edits=(*changes[0].edits, hint))
    return changes


def _drop_order(old: Snapshot, dropped: list[str]) -> list[str]:
    """Dropped tables, those that reference other dropped tables first."""
    ordered: list[str] = []
    remaining = list(dropped)
    while remaining:
        for key in remaining:
            referenced_by_rest = any(
                fk.table.lower() == key
                for other in remaining
                if other != key
                for fk in old.tables[other].foreign_keys
            )
            if not referenced_by_rest:
                ordered.append(key)
                remaining.remove(key)
                break
        else:  # a cycle: drop in name order, the constraints go with the tables
            ordered += sorted(remaining)
            break
    return ordered


def diff(old: Snapshot, new: Snapshot) -> Plan:
    """The changes that take old to new, in a stable order."""
    created = [
        o.name.lower()
        for o in new.objects
        if o.type == "table" and o.name.lower() not in old.tables
    ]
    dropped = sorted(set(old.tables) - set(new.tables))
    changes: list[Change] = [
        Change(
            f"add table {q(new.tables[k].name)}",
            (new.create_sql(k), *(i.sql for i in new.indexes_of(k))),
        )
        for k in created
    ]
    # Foreign keys of new tables once every new table exists.
    changes += [
        Change(f"add the foreign keys of {q(new.tables[k].name)}", new.extra_sql[k])
        for k in created
        if new.extra_sql.get(k)
    ]
    for key in sorted(set(old.tables) & set(new.tables)):
        changes += _table_changes(old, new, key)
    for key in _drop_order(old, dropped):
        name = q(old.tables[key].name)
        changes.append(
            Change(
                f"drop table {name}",
                (f"DROP TABLE {name}",),
                destructive=(f"drops table {name} and all its rows",),
                edits=(dropped_table_hint(old.tables[key].name),) if created else (),
            )
        )
    return Plan(tuple(changes))
