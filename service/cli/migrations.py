"""Migration commands: migrate, status, new, makemigration, check, accept-checksum."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from db import makemigration
from db import migrate as migrations
from db.database import entity_schema_problems
from db.migrations import baseline, lint, plan
from db.migrations.scratch import scratch_like
from service.cli.common import (
    EXIT_CONFIG,
    EXIT_EDITED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PENDING,
    found_migrations,
)
from service.config import Settings


def cmd_plan(settings: Settings) -> int:
    """Print what `migrate` would run, touching nothing; exit 3 when something is pending."""
    run_plan, backend = plan.make_plan(settings.target, found_migrations(settings))
    for line in run_plan.lines(backend):
        print(line)
    if run_plan.refusal:
        return EXIT_FAILED
    return EXIT_PENDING if run_plan.pending else EXIT_OK


def cmd_migrate(settings: Settings, *, show_plan: bool = False) -> int:
    """Apply pending migrations and print what was applied."""
    if show_plan:
        return cmd_plan(settings)
    found = found_migrations(settings)
    before = migrations.inspect(settings.database_path, found)
    after = migrations.migrate(
        settings.database_path, found, synchronous=settings.synchronous
    )
    done = [
        m.name for m in found if m.version in set(before.pending) - set(after.pending)
    ]
    print(
        f"applied {len(done)} migration(s){': ' + ', '.join(done) if done else ''}; "
        f"schema version {after.version}"
    )
    return EXIT_OK


def cmd_status(settings: Settings) -> int:
    """List applied and pending versions; exit 0 only when clean."""
    found = found_migrations(settings)
    state = migrations.inspect(settings.database_path, found)
    names = {m.version: m.name for m in found}
    print(f"database: {settings.database_path}")
    for version in sorted(set(names) | set(state.applied)):
        if version in state.edited:
            mark = "EDITED"
        elif version in state.unknown:
            mark = "applied, no file"
        elif version in state.applied:
            mark = "applied"
        else:
            mark = "pending"
        print(f"  {version:04d}  {mark:<16} {names.get(version, '')}")
    print(
        f"schema version: {state.version}; pending: {len(state.pending)}; "
        f"edited: {len(state.edited)}"
    )
    if state.edited:
        return EXIT_EDITED
    return EXIT_PENDING if state.pending else EXIT_OK


def cmd_new(settings: Settings, name: str) -> int:
    """Create the next numbered migration file."""
    folder = Path(str(settings.migrations_path or migrations.default_source()))
    file = folder / migrations.next_file_name(found_migrations(settings), name)
    file.write_text(
        f"-- {file.stem}: say what this changes and why.\n"
        "-- Runs in one transaction together with its history row; no BEGIN/COMMIT.\n"
        "-- A table rebuild (the 12 steps on sqlite.org/lang_altertable.html) adds\n"
        "-- the header line: -- migrate: foreign_keys=off\n"
    )
    print(file)
    return EXIT_OK


def cmd_makemigration(settings: Settings, name: str | None, *, check: bool) -> int:
    """Write the next migration from the entities, or (--check) fail if one is due."""
    folder = Path(str(settings.migrations_path or migrations.default_source()))
    if check:
        plan = makemigration.plan_migration(folder)
        if not plan.changes:
            print("no changes")
            return EXIT_OK
        print(
            f"the entities need a migration that does not exist yet "
            f"({len(plan.changes)} change(s)); run `python -m service makemigration NAME`:"
        )
        for line in makemigration.summary_lines(plan):
            print(f"  {line}")
        return EXIT_FAILED
    if not name:
        print("makemigration: give a NAME (or --check)", file=sys.stderr)
        return EXIT_CONFIG
    plan, path = makemigration.write_migration(folder, name)
    if path is None:
        print("no changes")
        return EXIT_OK
    print(f"wrote {path}")
    for line in makemigration.summary_lines(plan):
        print(f"  {line}")
    return EXIT_OK


def cmd_check(settings: Settings) -> int:
    """Validate checksums and the entity mapping without serving."""
    found = found_migrations(settings)
    failed = False
    pending = {m.version for m in found}
    if settings.database_path.exists():
        state = migrations.inspect(settings.database_path, found)
        for version in state.edited:
            print(f"edited after it was applied: {version:04d}")
            failed = True
        if state.pending:
            print(f"pending on {settings.database_path}: {state.pending}")
        pending = set(state.pending)
    with scratch_like(settings.target) as scratch:
        findings = lint.lint(found, pending, scratch)
    for finding in findings:
        print(f"destructive: {finding}")
        failed = failed or not finding.acknowledged
    with tempfile.TemporaryDirectory() as scratch:
        problems = entity_schema_problems(found, Path(scratch) / "check.sqlite3")
    for problem in problems:
        print(f"entities vs migrations: {problem}")
    failed = failed or bool(problems)
    print(
        "check failed"
        if failed
        else f"ok: {len(found)} migration(s) match the entities"
    )
    return EXIT_FAILED if failed else EXIT_OK


def cmd_baseline(settings: Settings, version: int) -> int:
    """Adopt a database these migrations did not create, if its schema matches."""
    recorded = baseline.baseline(settings.target, found_migrations(settings), version)
    print(
        f"baselined {len(recorded)} version(s) on {settings.target.describe()}: "
        f"{', '.join(m.name for m in recorded)}; its schema is what they create. "
        "`migrate` applies the files after them."
    )
    return EXIT_OK


def cmd_accept_checksum(settings: Settings, version: int) -> int:
    """Record the edited file's checksum for an applied version."""
    old, new = migrations.accept_checksum(
        settings.database_path, found_migrations(settings), version
    )
    print(f"version {version}: checksum {old} -> {new}")
    return EXIT_OK
