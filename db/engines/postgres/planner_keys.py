"""PostgreSQL's key changes for the generator: primary key, UNIQUE, foreign keys, indexes.

Each a DROP CONSTRAINT / ADD CONSTRAINT (or DROP / CREATE INDEX) in place;
new foreign keys and indexes use Pony's own statements.
"""

from __future__ import annotations

from db.engines.base.plan import (
    Change,
    Snapshot,
    columns_text,
    foreign_keys,
    unique_sets,
)
from db.engines.base.schema import Table
from db.engines.base.sql import quote_identifier as q


def fk_statement(new: Snapshot, key: str, column: str) -> str | None:
    """Pony's ADD CONSTRAINT ... FOREIGN KEY statement for one column."""
    wanted = f"FOREIGN KEY ({q(column)})"
    for statement in new.extra_sql.get(key, ()):
        if wanted in statement:
            return statement
    return None


def _primary_key(table: Table) -> tuple[str, ...]:
    keyed = sorted((c for c in table.columns if c.pk), key=lambda c: c.pk)
    return tuple(c.name.lower() for c in keyed)


def constraints(old: Snapshot, new: Snapshot, key: str, table: str) -> list[Change]:
    """Primary key, UNIQUE and foreign-key changes, as DROP/ADD CONSTRAINT."""
    old_t, new_t = old.tables[key], new.tables[key]
    changes: list[Change] = []
    old_pk, new_pk = _primary_key(old_t), _primary_key(new_t)
    if old_pk != new_pk:
        drops = [
            f"ALTER TABLE {table} DROP CONSTRAINT {q(i.name)}"
            for i in old_t.indexes
            if i.origin == "pk"
        ]
        adds = (
            [f"ALTER TABLE {table} ADD PRIMARY KEY ({', '.join(q(c) for c in new_pk)})"]
            if new_pk
            else []
        )
        changes.append(Change(f"change the primary key of {table}", (*drops, *adds)))
    want, have = unique_sets(new_t, ("u",)), unique_sets(old_t, ("u",))
    for index in old_t.indexes:
        cols = tuple(c.lower() for c in index.columns)
        if index.origin == "u" and cols not in want:
            changes.append(
                Change(
                    f"drop UNIQUE ({columns_text(cols)}) on {table}",
                    (f"ALTER TABLE {table} DROP CONSTRAINT {q(index.name)}",),
                )
            )
    for cols in sorted(want - have):
        changes.append(
            Change(
                f"add UNIQUE ({columns_text(cols)}) on {table}",
                (f"ALTER TABLE {table} ADD UNIQUE ({', '.join(q(c) for c in cols)})",),
                details=(f"duplicate ({columns_text(cols)}) values make it fail",),
            )
        )
    old_fks, new_fks = foreign_keys(old_t), foreign_keys(new_t)
    for fk in old_t.foreign_keys:
        if old_fks.get(fk.column.lower()) != new_fks.get(fk.column.lower()) and fk.name:
            changes.append(
                Change(
                    f"drop foreign key {q(fk.name)} on {table}",
                    (f"ALTER TABLE {table} DROP CONSTRAINT {q(fk.name)}",),
                )
            )
    for column in new_t.columns:
        name = column.name.lower()
        if old_t.column(column.name) is None or old_fks.get(name) == new_fks.get(name):
            continue
        statement = fk_statement(new, key, column.name)
        if statement:
            changes.append(
                Change(
                    f"add foreign key on {table}.{q(column.name)}",
                    (statement,),
                    details=(
                        f"rows whose {q(column.name)} has no parent make it fail",
                    ),
                )
            )
    return changes


def indexes(old: Snapshot, new: Snapshot, key: str, table: str) -> list[Change]:
    """DROP INDEX for an index that changed or went, Pony's CREATE INDEX for a new one."""
    old_t, new_t = old.tables[key], new.tables[key]
    old_shape = {
        i.name.lower(): (i.columns, i.unique) for i in old_t.indexes if i.origin == "c"
    }
    new_shape = {
        i.name.lower(): (i.columns, i.unique) for i in new_t.indexes if i.origin == "c"
    }
    new_sql = {o.name.lower(): o.sql for o in new.indexes_of(key)}
    changes = [
        Change(f"drop index {q(n)} on {table}", (f"DROP INDEX {q(n)}",))
        for n in sorted(old_shape)
        if old_shape[n] != new_shape.get(n)
    ]
    changes += [
        Change(f"create index {q(n)} on {table}", (new_sql[n],))
        for n in sorted(new_shape)
        if new_shape[n] != old_shape.get(n) and n in new_sql
    ]
    return changes
