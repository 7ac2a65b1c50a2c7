"""`migrate --plan`: what the runner would do, without touching the database.

The history is read read-only (an SQLite file that does not exist is not
created, no lock is taken), checked by the same rules the runner applies,
and each pending file is listed with its header modes and every
statement the runner would execute for it, its own and the runner's.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from db.engines import migration_backend
from db.engines.base.migration import Backend
from db.errors import MigrationError
from db.migrations.files import Migration
from db.migrations.history import (
    SchemaState,
    check_history,
    empty_message,
    untracked_error,
)
from db.target import DatabaseTarget


@dataclass(frozen=True)
class RunPlan:
    """The pending files in the order they would run, or why the run would stop."""

    database: str
    dialect: str
    state: SchemaState | None  # None when the history itself is refused
    pending: tuple[Migration, ...]
    refusal: str | None = None

    def lines(self, backend: Backend) -> list[str]:
        """The plan as text, one list item per printed line."""
        version = self.state.version if self.state else None
        lines = [
            f"database: {self.database} ({self.dialect}, "
            + (f"schema version {version})" if version else "nothing applied yet)")
        ]
        if self.refusal:
            return [*lines, f"migrate would refuse: {self.refusal}"]
        if not self.pending:
            return [*lines, "nothing pending"]
        lines.append(
            f"{len(self.pending)} pending migration(s), in this order "
            "(nothing has been run):"
        )
        for migration in self.pending:
            modes = migration.header.modes()
            lines.append("")
            lines.append(
                f"{migration.name}"
                + (f"  [header: {', '.join(modes)}]" if modes else "")
                + f"  checksum {migration.checksum[-12:]}"
            )
            for step in backend.steps(migration):
                first, *rest = step.split("\n")
                lines.append(f"    {first}")
                lines.extend(textwrap.indent(line, "        ") for line in rest)
        return lines


def make_plan(
    target: DatabaseTarget | Path | Backend, migrations: list[Migration]
) -> tuple[RunPlan, Backend]:
    """What `migrate` would apply to target, read without writing anything."""
    backend = (
        target
        if not isinstance(target, DatabaseTarget | Path)
        else migration_backend(target)
    )
    try:
        untracked = backend.untracked_tables()
        if untracked:
            raise untracked_error(untracked)
        current = check_history(migrations, backend.read_history())
    except MigrationError as ex:
        return RunPlan(backend.describe(), backend.dialect, None, (), str(ex)), backend
    pending = tuple(m for m in migrations if m.version in current.pending)
    for migration in pending:
        if migration.empty:
            refusal = empty_message(migration)
            return RunPlan(
                backend.describe(), backend.dialect, current, (), refusal
            ), backend
    return RunPlan(backend.describe(), backend.dialect, current, pending), backend
