"""Plan the SQL that takes the migrated schema to the entities' schema.

Pure: both sides arrive as Snapshots (introspection plus the CREATE text
SQLite stored), and the result is a Plan of reviewable Changes. What
ALTER TABLE can do uses it; everything else is the 12-step rebuild from
https://sqlite.org/lang_altertable.html, which needs foreign keys off
(the runner's `-- migrate: foreign_keys=off` header) so that dropping the
old table does not cascade into its children.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from db.dialects import sqlite_schema
from db.errors import MigrationError

q = sqlite_schema.quote_identifier

# The copy of a new NOT NULL column without a default: NULL fails loudly on
# a table that has rows (the runner rolls back), and is right on an empty one.
PLACEHOLDER = "NULL /* EDIT: value for the existing rows */"


@dataclass(frozen=True)
class Snapshot:
    """A schema: introspected tables plus the CREATE text of every object."""

    tables: dict[str, sqlite_schema.Table]
    objects: tuple[sqlite_schema.SchemaObject, ...]
    # The target's column definitions ('"c" TEXT NOT NULL'), for ADD COLUMN.
    column_sql: dict[tuple[str, str], str] = field(default_factory=dict)

    def create_sql(self, key: str) -> str:
        """The CREATE TABLE statement of the table keyed key."""
        for obj in self.objects:
            if obj.type == "table" and obj.name.lower() == key:
                return obj.sql
        raise KeyError(key)

    def indexes_of(self, key: str) -> list[sqlite_schema.SchemaObject]:
        """The CREATE INDEX statements on the table keyed key."""
        return [o for o in self.objects if o.type == "index" and o.table.lower() == key]


@dataclass(frozen=True)
class Change:
    """One reviewable step: comment lines, then its statements."""

    summary: str
    statements: tuple[str, ...] = ()
    details: tuple[str, ...] = ()  # one comment line per column-level change
    destructive: tuple[str, ...] = ()  # the data this step deletes
    edits: tuple[str, ...] = ()  # what a human has to decide
    foreign_keys_off: bool = False  # a rebuild or a dropped table


@dataclass(frozen=True)
class Plan:
    """Every change, in the order the file applies them."""

    changes: tuple[Change, ...]

    @property
    def foreign_keys_off(self) -> bool:
        """Whether the file needs the runner's foreign-keys-off header."""
        return any(c.foreign_keys_off for c in self.changes)

    @property
    def destructive(self) -> list[str]:
        """What the plan deletes, one line each."""
        return [line for c in self.changes for line in c.destructive]

    @property
    def edits(self) -> list[str]:
        """Where a human must decide, one line each."""
        return [line for c in self.changes for line in c.edits]


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _norm(default: str | None) -> str | None:
    return None if default is None else " ".join(default.split())


def _columns(cols: tuple[str, ...]) -> str:
    return ", ".join(cols)


def _unique_sets(
    table: sqlite_schema.Table, origins: tuple[str, ...]
) -> set[tuple[str, ...]]:
    return {
        tuple(c.lower() for c in index.columns)
        for index in table.indexes
        if index.unique and index.origin in origins
    }


def _foreign_keys(table: sqlite_schema.Table) -> dict[str, set[tuple[str, str, str]]]:
    by_column: dict[str, set[tuple[str, str, str]]] = {}
    for fk in table.foreign_keys:
        by_column.setdefault(fk.column.lower(), set()).add(
            (fk.table.lower(), (fk.to or "").lower(), fk.on_delete)
        )
    return by_column


def _describe_fk(fks: set[tuple[str, str, str]]) -> str:
    return ", ".join(f"{t}({c}) ON DELETE {d}" for t, c, d in sorted(fks)) or "(none)"


def _column_details(
    old: sqlite_schema.Column, new: sqlite_schema.Column
) -> tuple[list[str], list[str]]:
    """Changes ALTER TABLE cannot make to a kept column, and notes on its copy."""
    details: list[str] = []
    notes: list[str] = []
    name = q(new.name)
    if old.type != new.type:
        details.append(f"column {name}: type {old.type or '(none)'} -> {new.type}")
        notes.append(
            f"column {name} is copied as stored; SQLite applies the {new.type} "
            "affinity, which converts only losslessly (wrap it in CAST(...) in the "
            "SELECT for a lossy conversion)"
        )
    # A NOT NULL primary key that Pony leaves implicit is stricter, so fine.
    if old.notnull != new.notnull and not (old.notnull and new.pk):
        details.append(
            f"column {name}: "
            + ("NOT NULL (was nullable)" if new.notnull else "nullable (was NOT NULL)")
        )
    if _norm(old.default) != _norm(new.default):
        details.append(
            f"column {name}: DEFAULT {old.default or '(none)'} -> "
            f"{new.default or '(none)'}"
        )
    if old.pk != new.pk:
        details.append(f"column {name}: primary key position {old.pk} -> {new.pk}")
    return details, notes


def _add_blocker(
    column: sqlite_schema.Column, unique: set[tuple[str, ...]], has_fk: bool
) -> str | None:
    """Why ALTER TABLE ADD COLUMN cannot add column (None when it can)."""
    if column.pk:
        return "part of the primary key"
    if (column.name.lower(),) in unique:
        return "UNIQUE"
    if column.notnull and column.default is None:
        return "NOT NULL without a DEFAULT"
    if not sqlite_schema.is_constant_default(column.default):
        return f"non-constant DEFAULT {column.default}"
    if has_fk and column.default is not None:
        return "foreign key with a DEFAULT"
    return None


def _drop_blocker(
    table: sqlite_schema.Table, column: sqlite_schema.Column
) -> str | None:
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


def _copy_sequence(old_name: str, new_name: str) -> tuple[str, ...]:
    # Keep AUTOINCREMENT's promise (ids never reused) across the rebuild:
    # DROP TABLE forgets the old counter, RENAME carries new_X's over.
    return (
        f"DELETE FROM sqlite_sequence WHERE name = {_sql_string(new_name)}",
        f"INSERT INTO sqlite_sequence (name, seq) SELECT {_sql_string(new_name)}, "
        f"seq FROM sqlite_sequence WHERE name = {_sql_string(old_name)}",
    )


def _rebuild(
    old: Snapshot, new: Snapshot, key: str, details: list[str], notes: list[str]
) -> Change:
    """The 12 steps: create new_X, copy, drop X, rename, recreate indexes."""
    old_t, new_t = old.tables[key], new.tables[key]
    name = new_t.name
    temp = "new_" + name
    if temp.lower() in old.tables:
        raise MigrationError(f"cannot rebuild {name}: a table called {temp} exists")
    create = new.create_sql(key)
    prefix = f"CREATE TABLE {q(name)}"
    if not create.startswith(prefix):
        raise MigrationError(f"unexpected CREATE TABLE text for {name}: {create[:60]}")
    edits: list[str] = []
    targets: list[str] = []
    sources: list[str] = []
    for column in new_t.columns:
        was = old_t.column(column.name)
        if was is None:
            if column.notnull and column.default is None and not column.pk:
                targets.append(q(column.name))
                sources.append(PLACEHOLDER)
                edits.append(
                    f"{q(name)}.{q(column.name)} is NOT NULL without a DEFAULT: "
                    "replace the NULL placeholder in the SELECT with a value for "
                    "the existing rows (or give the attribute a sql_default)"
                )
            continue  # left out of the copy: the DEFAULT (or NULL) applies
        targets.append(q(column.name))
        source = q(was.name)
        if column.notnull and not was.notnull and not column.pk:
            if column.default is not None:
                source = f"COALESCE({source}, {column.default})"
            else:
                edits.append(
                    f"{q(name)}.{q(column.name)} becomes NOT NULL: rows where it is "
                    f"NULL make the copy fail; write COALESCE({source}, <value>) in "
                    "the SELECT to fill them"
                )
        sources.append(source)
    statements = ["CREATE TABLE " + q(temp) + create[len(prefix) :]]
    if targets:
        statements.append(
            f"INSERT INTO {q(temp)} ({', '.join(targets)})\n"
            f"  SELECT {', '.join(sources)}\n  FROM {q(old_t.name)}"
        )
    if sqlite_schema.has_autoincrement(create) and sqlite_schema.has_autoincrement(
        old.create_sql(key)
    ):
        statements.extend(_copy_sequence(old_t.name, temp))
    statements.append(f"DROP TABLE {q(old_t.name)}")
    statements.append(f"ALTER TABLE {q(temp)} RENAME TO {q(name)}")
    statements.extend(index.sql for index in new.indexes_of(key))
    kept = {o.name.lower() for o in new.indexes_of(key)}
    details = details + [
        f"drop index {q(o.name)} (the entities do not declare it)"
        for o in old.indexes_of(key)
        if o.name.lower() not in kept
    ]
    was_lines = ["was: " + line for line in old.create_sql(key).splitlines()]
    return Change(
        summary=f"rebuild table {q(name)} (the 12 steps of sqlite.org/lang_altertable.html)",
        statements=tuple(statements),
        details=tuple(details + notes + was_lines),
        destructive=tuple(
            f"drops column {q(name)}.{q(c.name)} and its data"
            for c in old_t.columns
            if new_t.column(c.name) is None
        ),
        edits=tuple(edits),
        foreign_keys_off=True,
    )


def _rename_hint(
    table: str, dropped: list[str], added: list[str], rebuild: bool
) -> str:
    how = (
        'copy it across: put "new" in the INSERT column list and "old" in the '
        "SELECT, at the same position"
        if rebuild
        else f'replace the DROP and the ADD with ALTER TABLE {q(table)} RENAME COLUMN "old" TO "new"'
    )
    return (
        f"{q(table)}: a rename cannot be told from drop + add; if "
        f"{' or '.join(dropped)} was renamed to {' or '.join(added)}, {how}"
    )


def _table_changes(old: Snapshot, new: Snapshot, key: str) -> list[Change]:
    old_t, new_t = old.tables[key], new.tables[key]
    name = new_t.name
    details: list[str] = []
    notes: list[str] = []
    old_fks, new_fks = _foreign_keys(old_t), _foreign_keys(new_t)
    want_unique = _unique_sets(new_t, ("u", "c"))
    have_unique = _unique_sets(old_t, ("u", "c"))
    added = [c for c in new_t.columns if old_t.column(c.name) is None]
    dropped = [c for c in old_t.columns if new_t.column(c.name) is None]

    for column in new_t.columns:
        was = old_t.column(column.name)
        if was is None:
            blocker = _add_blocker(column, want_unique, column.name.lower() in new_fks)
            if blocker:
                details.append(f"add column {q(column.name)} ({blocker})")
            continue
        column_details, column_notes = _column_details(was, column)
        details += column_details
        notes += column_notes
        before = old_fks.get(column.name.lower(), set())
        after = new_fks.get(column.name.lower(), set())
        if before != after:
            details.append(
                f"column {q(column.name)}: foreign key {_describe_fk(before)} -> "
                f"{_describe_fk(after)}"
            )
            if after - before:
                notes.append(
                    f"rows of {q(name)} whose {q(column.name)} has no parent make "
                    "the runner's foreign_key_check fail"
                )
    for column in dropped:
        blocker = _drop_blocker(old_t, column)
        if blocker:
            details.append(f"drop column {q(column.name)} ({blocker})")
    added_names = {c.name.lower() for c in added}
    for cols in sorted(want_unique - have_unique):
        if set(cols) <= added_names and len(cols) == 1:
            continue  # named above as the reason ADD COLUMN cannot add it
        details.append(f"add UNIQUE ({_columns(cols)})")
        if not set(cols) & added_names:  # new columns are NULL: never duplicates
            notes.append(f"duplicate ({_columns(cols)}) values make the copy fail")
    for cols in sorted(_unique_sets(old_t, ("u",)) - want_unique):
        details.append(f"drop UNIQUE ({_columns(cols)})")

    rename = (
        [
            _rename_hint(
                name,
                [q(c.name) for c in dropped],
                [q(c.name) for c in added],
                rebuild=bool(details),
            )
        ]
        if dropped and added
        else []
    )
    if details:
        change = _rebuild(old, new, key, details, notes)
        return [replace(change, edits=change.edits + tuple(rename))]
    return _alter_changes(old, new, key, added, dropped, rename)


def _alter_changes(
    old: Snapshot,
    new: Snapshot,
    key: str,
    added: list[sqlite_schema.Column],
    dropped: list[sqlite_schema.Column],
    rename: list[str],
) -> list[Change]:
    """Changes ALTER TABLE, CREATE INDEX and DROP INDEX can make in place."""
    old_t, new_t = old.tables[key], new.tables[key]
    table = q(new_t.name)
    want_unique = _unique_sets(new_t, ("u", "c"))
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


def _views_and_triggers(
    old: Snapshot, dropped_tables: set[str]
) -> tuple[Change | None, Change | None]:
    """Drop and recreate views and triggers around rebuilds and dropped columns.

    ALTER TABLE RENAME and DROP COLUMN re-check every view and trigger, and
    fail on one that names the table while it is being replaced.
    """
    kept = [o for o in old.objects if o.type in ("view", "trigger")]
    if not kept:
        return None, None
    drop = Change(
        "drop views and triggers (recreated at the end of this file)",
        tuple(f"DROP {o.type.upper()} {q(o.name)}" for o in reversed(kept)),
    )
    recreate = Change(
        "recreate views and triggers as they were",
        tuple(
            o.sql
            for o in kept
            if not (o.type == "trigger" and o.table.lower() in dropped_tables)
        ),
        edits=(
            "views and triggers are recreated as they were: check the ones that "
            "use a changed or dropped column",
        ),
    )
    return drop, recreate


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
    for key in sorted(set(old.tables) & set(new.tables)):
        changes.extend(_table_changes(old, new, key))
    for key in dropped:
        table = old.tables[key]
        edits = (
            (
                f"a rename cannot be told from drop + add: if {q(table.name)} became "
                f"one of the added tables, replace that CREATE TABLE and this DROP "
                f'with ALTER TABLE {q(table.name)} RENAME TO "new name"',
            )
            if created
            else ()
        )
        changes.append(
            Change(
                f"drop table {q(table.name)}",
                (f"DROP TABLE {q(table.name)}",),
                destructive=(f"drops table {q(table.name)} and all its rows",),
                edits=edits,
                foreign_keys_off=True,
            )
        )
    if any(c.foreign_keys_off or c.summary.startswith("drop column") for c in changes):
        drop, recreate = _views_and_triggers(old, set(dropped))
        if drop and recreate:
            changes = [drop, *changes, recreate]
    return Plan(tuple(changes))
