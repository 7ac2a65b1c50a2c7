"""SQLite's 12-step table rebuild, and the views and triggers around it.

What ALTER TABLE cannot do is the rebuild from
https://sqlite.org/lang_altertable.html: create new_X with Pony's DDL,
copy the rows by column name, drop X, rename new_X to X, recreate the
indexes. It needs foreign keys off (the runner's `-- migrate:
foreign_keys=off` header) so that dropping X does not cascade into its
children. A rename re-checks every view and trigger, so those that
reference the rebuilt table (and only those) are dropped first and
recreated after.
"""

from __future__ import annotations

from db.engines.base import sql
from db.engines.base.plan import PLACEHOLDER, Change, Snapshot, becomes_not_null
from db.engines.base.schema import SchemaObject
from db.engines.base.sql import quote_identifier as q
from db.engines.base.sql import sql_string
from db.engines.sqlite import introspection
from db.errors import MigrationError


def _copy_sequence(old_name: str, new_name: str) -> tuple[str, ...]:
    # Keep AUTOINCREMENT's promise (ids never reused) across the rebuild:
    # DROP TABLE forgets the old counter, RENAME carries new_X's over.
    return (
        f"DELETE FROM sqlite_sequence WHERE name = {sql_string(new_name)}",
        f"INSERT INTO sqlite_sequence (name, seq) SELECT {sql_string(new_name)}, "
        f"seq FROM sqlite_sequence WHERE name = {sql_string(old_name)}",
    )


def _copy(
    old: Snapshot, new: Snapshot, key: str
) -> tuple[list[str], list[str], list[str]]:
    """The INSERT's target columns, their SELECT expressions, and EDIT lines."""
    old_t, new_t = old.tables[key], new.tables[key]
    name = q(new_t.name)
    edits: list[str] = []
    targets: list[str] = []
    sources: list[str] = []
    for column in new_t.columns:
        was = old_t.column(column.name)
        fill = new.fill(key, column.name)
        where = f"{name}.{q(column.name)}"
        if was is None:
            if not column.notnull or column.pk or column.default is not None:
                continue  # left out of the copy: the DEFAULT (or NULL) applies
            targets.append(q(column.name))
            if fill is not None:
                sources.append(fill)  # the attribute's constant default
                continue
            sources.append(PLACEHOLDER)
            edits.append(
                f"{where} is NOT NULL and the entities give no constant default "
                "for it: replace the NULL placeholder in the SELECT with a value "
                "for the existing rows (or give the attribute a constant default)"
            )
            continue
        targets.append(q(column.name))
        source = q(was.name)
        if becomes_not_null(was, column):
            fill = fill if fill is not None else column.default
            if fill is not None:
                source = f"COALESCE({source}, {fill})"
            else:
                edits.append(
                    f"{where} becomes NOT NULL and the entities give no constant "
                    "default for it: rows where it is NULL make the copy fail; "
                    f"write COALESCE({source}, <value>) in the SELECT to fill them"
                )
        sources.append(source)
    return targets, sources, edits


def rebuild(old: Snapshot, new: Snapshot, key: str, details: list[str]) -> Change:
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
    targets, sources, edits = _copy(old, new, key)
    statements = ["CREATE TABLE " + q(temp) + create[len(prefix) :]]
    if targets:
        statements.append(
            f"INSERT INTO {q(temp)} ({', '.join(targets)})\n"
            f"  SELECT {', '.join(sources)}\n  FROM {q(old_t.name)}"
        )
    if introspection.has_autoincrement(create) and introspection.has_autoincrement(
        old.create_sql(key)
    ):
        statements.extend(_copy_sequence(old_t.name, temp))
    statements.append(f"DROP TABLE {q(old_t.name)}")
    statements.append(f"ALTER TABLE {q(temp)} RENAME TO {q(name)}")
    statements.extend(index.sql for index in new.indexes_of(key))
    kept = {o.name.lower() for o in new.indexes_of(key)}
    notes = [
        f"drop index {q(o.name)} (the entities do not declare it)"
        for o in old.indexes_of(key)
        if o.name.lower() not in kept
    ]
    for column in new_t.columns:
        was = old_t.column(column.name)
        if was is not None and was.type != column.type:
            notes.append(
                f"column {q(column.name)} is copied as stored; SQLite applies the "
                f"{column.type} affinity, which converts only losslessly (wrap it in "
                "CAST(...) in the SELECT for a lossy conversion)"
            )
    was_lines = ["was: " + line for line in old.create_sql(key).splitlines()]
    return Change(
        summary=f"rebuild table {q(name)} (the 12 steps of sqlite.org/lang_altertable.html)",
        statements=tuple(statements),
        details=tuple(details + notes + was_lines),
        edits=tuple(edits),
        foreign_keys_off=True,
    )


def dependents(
    objects: tuple[SchemaObject, ...], tables: set[str]
) -> list[SchemaObject]:
    """The views and triggers that reference tables, directly or through each other.

    A trigger ON a table depends on it; so does a view or trigger whose SQL
    names it (strings do not count). In creation order.
    """
    candidates = [o for o in objects if o.type in ("view", "trigger")]
    names = {t.lower() for t in tables}
    found: set[str] = set()
    grew = True
    while grew:
        grew = False
        for obj in candidates:
            if obj.name.lower() in found:
                continue
            on_table = obj.type == "trigger" and obj.table.lower() in names
            if on_table or sql.references(obj.sql, "sqlite") & names:
                found.add(obj.name.lower())
                names.add(obj.name.lower())
                grew = True
    return [o for o in candidates if o.name.lower() in found]


def views_and_triggers(
    old: Snapshot,
    replaced: set[str],
    dropped: set[str],
    lost_columns: dict[str, set[str]],
) -> tuple[Change | None, Change | None]:
    """Drop and recreate the views and triggers on replaced or dropped tables.

    ALTER TABLE RENAME and DROP COLUMN re-check every view and trigger, and
    fail on one that names the table while it is being replaced; those on
    other tables are left alone. One that reads a dropped table is dropped
    for good (flagged); one that uses a dropped column gets an EDIT line.
    """
    affected = dependents(old.objects, replaced | dropped)
    if not affected:
        return None, None
    gone = {o.name.lower() for o in dependents(old.objects, dropped)}
    drop = Change(
        "drop the views and triggers that use "
        + ", ".join(q(t) for t in sorted(replaced | dropped))
        + " (recreated at the end of this file)",
        tuple(f"DROP {o.type.upper()} {q(o.name)}" for o in reversed(affected)),
        destructive=tuple(
            f"drops {o.type} {q(o.name)} for good (it uses a dropped table)"
            for o in affected
            if o.name.lower() in gone
            and not (o.type == "trigger" and o.table.lower() in dropped)
        ),
    )
    edits = []
    for obj in affected:
        if obj.name.lower() in gone:
            continue
        used = sql.references(obj.sql, "sqlite")
        for table, columns in sorted(lost_columns.items()):
            if table in used and columns & used:
                edits.append(
                    f"{obj.type} {q(obj.name)} may use the dropped column(s) "
                    f"{', '.join(sorted(columns & used))} of {q(table)}: recreating "
                    "it as it was fails; rewrite it below"
                )
    kept = tuple(o.sql for o in affected if o.name.lower() not in gone)
    recreate = (
        Change(
            "recreate those views and triggers as they were", kept, edits=tuple(edits)
        )
        if kept
        else None
    )
    return drop, recreate
