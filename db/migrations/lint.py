"""The destructive-change lint: what a pending file deletes or rewrites.

Each pending file runs on a scratch database of the engine it is for, and
the schema before and after it is compared: a table or column that
disappears (DROP TABLE, DROP COLUMN, a rebuild that leaves a column out),
a column whose type changes, and a column that becomes NOT NULL on a
table that already has rows without the file filling it. Renames are
told apart by the file's own statements. Each finding is refused unless
the file's header says `-- migrate: destructive`; makemigration writes
that line commented out, so a human must opt in.
"""

from __future__ import annotations

from dataclasses import dataclass

from db.engines import migration_backend
from db.engines.base.schema import Column, Schema, Table
from db.migrations.files import Migration
from db.migrations.runner import migrate
from db.migrations.statements import Effects, effects_of, is_plain_copy
from db.target import DatabaseTarget


@dataclass(frozen=True)
class Finding:
    """One destructive change in one file."""

    file: str
    what: str
    acknowledged: bool  # the header says -- migrate: destructive

    def __str__(self) -> str:
        if self.acknowledged:
            return f"{self.file}: {self.what} (acknowledged: -- migrate: destructive)"
        return (
            f"{self.file}: {self.what}; refused until its header says "
            "'-- migrate: destructive'"
        )


def _filled(
    column: Column, was: Column | None, after_table: str, effects: Effects
) -> bool:
    """Whether the file gives column a value on the rows table_before already has."""
    key = (after_table, column.name.lower())
    if key in effects.updated or key in effects.added_with_default:
        return True
    for target, exprs in effects.copies.items():
        if effects.final_name(target) != after_table:
            continue
        expr = exprs.get(column.name.lower())
        if expr is None:
            return column.default is not None  # left out: its DEFAULT applies
        return not is_plain_copy(expr) or (was is not None and was.notnull)
    if any(effects.final_name(t) == after_table for t in effects.copied_star):
        return was is not None and was.notnull
    return was is None and column.default is not None  # ALTER TABLE ADD ... DEFAULT


def _lost(old: Table, new: Table, key: str, effects: Effects) -> list[str]:
    """Columns the file drops or retypes."""
    rebuilt = any(
        t != key and effects.final_name(t) == key
        for t in [*effects.copies, *effects.copied_star]
    )
    lines: list[str] = []
    for was in old.columns:
        column = new.column(
            effects.column_renames.get((key, was.name.lower()), was.name)
        )
        if column is None:
            how = " (a rebuild that leaves it out)" if rebuilt else ""
            lines.append(f"drops column {old.name}.{was.name} and its data{how}")
        elif column.type != was.type:
            lines.append(
                f"changes the type of {new.name}.{column.name} "
                f"({was.type or '(none)'} -> {column.type})"
            )
    return lines


def _unfilled(
    old: Table, new: Table, key: str, new_key: str, effects: Effects
) -> list[str]:
    """Columns that become NOT NULL on existing rows without a value."""
    renamed_from = {v: k[1] for k, v in effects.column_renames.items() if k[0] == key}
    lines: list[str] = []
    for column in new.columns:
        if not column.notnull or column.pk:
            continue
        was = old.column(renamed_from.get(column.name.lower(), column.name))
        if was is not None and was.notnull:
            continue
        if not _filled(column, was, new_key, effects):
            what = "new NOT NULL column" if was is None else "becomes NOT NULL"
            lines.append(
                f"{new.name}.{column.name}: {what} without a value for the rows "
                "already there (give it a DEFAULT, UPDATE it first, or COALESCE "
                "it in the copy)"
            )
    return lines


def findings_for(before: Schema, after: Schema, migration: Migration) -> list[str]:
    """What the file deletes or rewrites, given the schema before and after it."""
    effects = effects_of(migration.statements, migration.dialect)
    lines: list[str] = []
    for key, old in sorted(before.items()):
        new_key = effects.final_name(key) if key in effects.table_renames else key
        new = after.get(new_key)
        if new is None:
            lines.append(f"drops table {old.name} and all its rows")
            continue
        lines += _lost(old, new, key, effects)
        lines += _unfilled(old, new, key, new_key, effects)
    return lines


def lint(
    migrations: list[Migration], pending: set[int], scratch: DatabaseTarget
) -> list[Finding]:
    """Run the files one by one on scratch; the findings of the pending ones."""
    findings: list[Finding] = []
    backend = migration_backend(scratch)
    done: list[Migration] = []
    for migration in migrations:
        if migration.empty:
            continue  # nothing to run yet; check refuses it on its own
        if migration.version not in pending:
            done.append(migration)
            continue
        if done:
            migrate(backend, done, announce=False)
        before = backend.read_full_schema().tables if done else {}
        done.append(migration)
        migrate(backend, done, announce=False)
        after = backend.read_full_schema().tables
        findings.extend(
            Finding(migration.name, line, migration.header.destructive)
            for line in findings_for(before, after, migration)
        )
    return findings
