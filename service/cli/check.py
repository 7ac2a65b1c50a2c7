"""`check`: everything CI must know before a migration reaches a database.

One command, one verdict: the files read and lint cleanly, the database
the settings name (when it exists) has not drifted from them, the
pending files carry no unacknowledged destructive change, the migrated
schema is what the entities expect, and the entities need no migration
that does not exist yet (what `makemigration --check` says, so the two
never disagree). Nothing it builds on a scratch database is reported as
if it had happened to the live one.
"""

from __future__ import annotations

from pathlib import Path

from db import makemigration, schemacheck
from db import migrate as migrations
from db.migrations import history, lint
from db.migrations.scratch import scratch_like
from db.target import SqliteTarget
from service.cli.common import EXIT_FAILED, EXIT_OK, found_migrations
from service.config import Settings


def cmd_check(settings: Settings) -> int:
    """Validate the files, the live history, the lint and the entities; exit 1 on any problem."""
    found = found_migrations(settings)
    target = settings.target
    problems: list[str] = []
    pending = {m.version for m in found}
    exists = not isinstance(target, SqliteTarget) or target.path.exists()
    if exists:
        backend = migrations.backend_for(target)
        applied = backend.read_history()
        problems += history.history_problems(found, applied)
        pending -= set(applied)
        if pending:
            print(f"pending on {backend.describe()}: {sorted(pending)}")
    for migration in found:
        if migration.empty and migration.version in pending:
            problems.append(history.empty_message(migration))
    with scratch_like(target) as scratch:
        findings = lint.lint(found, pending, scratch)
    for finding in findings:
        if finding.acknowledged:
            print(f"destructive: {finding}")
        else:
            problems.append(f"destructive: {finding}")
    problems += [
        f"entities vs migrations: {p}" for p in schemacheck.migrations_problems(found)
    ]
    folder = Path(str(settings.migrations_path or migrations.default_source()))
    plan = makemigration.plan_migration(folder)
    problems += [
        f"the entities need a migration that does not exist yet "
        f"(`python -m service makemigration NAME`): {change.summary}"
        for change in plan.changes
    ]
    for problem in problems:
        print(problem)
    if problems:
        print(f"check failed: {len(problems)} problem(s)")
        return EXIT_FAILED
    print(f"ok: {len(found)} migration(s) match the entities")
    return EXIT_OK
