"""Plan the SQLite migration that takes the migrated schema to the entities'.

Pure: both sides arrive as Snapshots, and the result is a Plan. What
ALTER TABLE can do (add or drop a column, create or drop an index) uses
it; everything else is a rebuild (rebuild.py).
"""

from __future__ import annotations

from dataclasses import replace

from db.engines.base.plan import (
    Change,
    Plan,
    Snapshot,
    column_details,
    columns_text,
    describe_fk,
    destructive_lines,
    dropped_table_hint,
    foreign_keys,
    rename_hint,
    unique_sets,
)
from db.engines.base.schema import Column, Table
from db.engines.base.sql import quote_identifier as q
from db.engines.sqlite import introspection
from db.engines.sqlite.rebuild import rebuild, views_and_triggers

# A rebuild or a dropped table needs foreign keys off around the file.
FOREIGN_KEYS_OFF = (
    "-- migrate: foreign_keys=off",
    "-- (table rebuilds: the runner turns foreign keys off outside its",
    "-- transaction and runs PRAGMA foreign_key_check before COMMIT)",
)


def _add_blocker(
    column: Column, unique: set[tuple[str, ...]], has_fk: bool
) -> str | None:
    """Why ALTER TABLE ADD COLUMN cannot add column (None when it can)."""
    if column.pk:
        return "part of the primary key"
    if (column.name.lower(),) in unique:
        return "UNIQUE"
    if column.notnull and column.default is None:
        return "NOT NULL without a DEFAULT"
    if not introspection.is_constant_default(column.default):
        return f"non-constant DEFAULT {column.default}"
    if has_fk and column.default is not None:
        return "foreign key with a DEFAULT"
    return None


def _drop_blocker(table: Table, column: Column) -> str | None:
    """Why ALTER TABLE DROP COLUMN cannot drop column (None when it can)."""
    name = column.name.lower()
    if column.pk:
        return "part of the primary key"
    if any(
        name in (c.lower() for c in index.columns)
        for index in table.indexes
        if index.origin != "c"
    ):
        return "in a UNIQUE constraint"
    if any(fk.column.lower() == name for fk in table.foreign_keys):
        return "has a foreign key"
    return None


def _rebuild_reasons(old_t: Table, new_t: Table) -> tuple[list[str], list[str]]:
    """Why the table needs a rebuild (empty: ALTER TABLE will do), and notes."""
    details: list[str] = []
    notes: list[str] = []
    name = new_t.name
    old_fks, new_fks = foreign_keys(old_t), foreign_keys(new_t)
    want_unique = unique_sets(new_t, ("u", "c"))
    have_unique = unique_sets(old_t, ("u", "c"))
    added = {c.name.lower() for c in new_t.columns if old_t.column(c.name) is None}
    for column in new_t.columns:
        was = old_t.column(column.name)
        if was is None:
            blocker = _add_blocker(column, want_unique, column.name.lower() in new_fks)
            if blocker:
                details.append(f"add column {q(column.name)} ({blocker})")
            continue
        details += column_details(was, column)
        before = old_fks.get(column.name.lower(), set())
        after = new_fks.get(column.name.lower(), set())
        if before != after:
            details.append(
                f"column {q(column.name)}: foreign key {describe_fk(before)} -> "
                f"{describe_fk(after)}"
            )
            if after - before:
                notes.append(
                    f"rows of {q(name)} whose {q(column.name)} has no parent make "
                    "the runner's foreign_key_check fail"
                )
    for column in old_t.columns:
        if new_t.column(column.name) is None:
            blocker = _drop_blocker(old_t, column)
            if blocker:
                details.append(f"drop column {q(column.name)} ({blocker})")
    for cols in sorted(want_unique - have_unique):
        if set(cols) <= added and len(cols) == 1:
            continue  # named above as the reason ADD COLUMN cannot add it
        details.append(f"add UNIQUE ({columns_text(cols)})")
        if not set(cols) & added:  # new columns are NULL: never duplicates
            notes.append(f"duplicate ({columns_text(cols)}) values make the copy fail")
    for cols in sorted(unique_sets(old_t, ("u",)) - want_unique):
        details.append(f"drop UNIQUE ({columns_text(cols)})")
    return details, notes


def _table_changes(old: Snapshot, new: Snapshot, key: str) -> list[Change]:
    old_t, new_t = old.tables[key], new.tables[key]
    added = [c for c in new_t.columns if old_t.column(c.name) is None]
    dropped = [c for c in old_t.columns if new_t.column(c.name) is None]
    details, notes = _rebuild_reasons(old_t, new_t)
    rename = []
    if dropped and added:
        how = (
            'copy it across: put "new" in the INSERT column list and "old" in the '
            "SELECT, at the same position"
            if details
            else "replace the DROP and the ADD with ALTER TABLE "
            f'{q(new_t.name)} RENAME COLUMN "old" TO "new"'
        )
        rename.append(
            rename_hint(
                new_t.name,
                [q(c.name) for c in dropped],
                [q(c.name) for c in added],
                how,
            )
        )
    if details:
        change = rebuild(old, new, key, details + notes)
        return [
            replace(
                change,
                destructive=destructive_lines(old_t, new_t),
                edits=change.edits + tuple(rename),
            )
        ]
    return _alter_changes(old, new, key, added, dropped, rename)


def _alter_changes(
    old: Snapshot,
    new: Snapshot,
    key: str,
    added: list[Column],
    dropped: list[Column],
    rename: list[str],
) -> list[Change]:
    """Changes ALTER TABLE, CREATE INDEX and DROP INDEX can make in place."""
    old_t, new_t = old.tables[key], new.tables[key]
    table = q(new_t.name)
    want_unique = unique_sets(new_t, ("u", "c"))
    old_index = {o.name.lower(): o for o in old.indexes_of(key)}
    new_index = {o.name.lower(): o for o in new.indexes_of(key)}
    old_shape = {i.name.lower(): (i.columns, i.unique) for i in old_t.indexes}
    new_shape = {i.name.lower(): (i.columns, i.unique) for i in new_t.indexes}
    changes: list[Change] = []
    for index_name in sorted(old_index):
        if old_shape[index_name] == new_shape.get(index_name):
            continue
        columns, unique = old_shape[index_name]
        if unique and tuple(c.lower() for c in columns) in want_unique:
            continue  # a hand-written unique index doing the entities' UNIQUE's job
        changes.append(
            Change(
                f"drop index {q(old_index[index_name].name)} on {table}",
                (f"DROP INDEX {q(old_index[index_name].name)}",),
            )
        )
    for column in dropped:
        changes.append(
            Change(
                f"drop column {table}.{q(column.name)}",
                (f"ALTER TABLE {table} DROP COLUMN {q(column.name)}",),
                destructive=(f"drops column {table}.{q(column.name)} and its data",),
            )
        )
    for column in added:
        changes.append(
            Change(
                f"add column {table}.{q(column.name)}",
                (
                    f"ALTER TABLE {table} ADD COLUMN "
                    + new.column_sql[(key, column.name.lower())],
                ),
            )
        )
    for index_name in sorted(new_index):
        if new_shape[index_name] == old_shape.get(index_name):
            continue
        changes.append(
            Change(
                f"create index {q(new_index[index_name].name)} on {table}",
                (new_index[index_name].sql,),
            )
        )
    if rename and changes:
        changes[0] = replace(changes[0], edits=changes[0].edits + tuple(rename))
    return changes


def diff(old: Snapshot, new: Snapshot) -> Plan:
    """The changes that take old to new, in a stable order."""
    created = [
        o.name.lower()
        for o in new.objects
        if o.type == "table" and o.name.lower() not in old.tables
    ]
    dropped = sorted(set(old.tables) - set(new.tables))
    changes: list[Change] = []
    for key in created:
        table = new.tables[key]
        changes.append(
            Change(
                f"add table {q(table.name)}",
                (new.create_sql(key), *(i.sql for i in new.indexes_of(key))),
            )
        )
    replaced: set[str] = set()
    lost: dict[str, set[str]] = {}
    for key in sorted(set(old.tables) & set(new.tables)):
        table_changes = _table_changes(old, new, key)
        changes.extend(table_changes)
        gone = {
            c.name.lower()
            for c in old.tables[key].columns
            if new.tables[key].column(c.name) is None
        }
        if gone:
            lost[key] = gone
        if any(
            c.foreign_keys_off or c.summary.startswith("drop column")
            for c in table_changes
        ):
            replaced.add(key)
    for key in dropped:
        table = old.tables[key]
        changes.append(
            Change(
                f"drop table {q(table.name)}",
                (f"DROP TABLE {q(table.name)}",),
                destructive=(f"drops table {q(table.name)} and all its rows",),
                edits=(dropped_table_hint(table.name),) if created else (),
                foreign_keys_off=True,
            )
        )
    drop, recreate = views_and_triggers(old, replaced, set(dropped), lost)
    if drop:
        changes = [drop, *changes, *([recreate] if recreate else [])]
    header = FOREIGN_KEYS_OFF if any(c.foreign_keys_off for c in changes) else ()
    return Plan(tuple(changes), header)
