"""Migration commands: migrate, status, new, makemigration, check, accept-checksum."""

from __future__ import annotations

import sys
from pathlib import Path

from db import migrate as migrations
from db.engines import scratch_source
from db.migrations import baseline, history, plan
from db.migrations.files import next_stem
from db.schema import makemigration
from db.target import SqliteTarget
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


def _version(version: int | None) -> str:
    return str(version) if version is not None else "none (nothing applied)"


def cmd_migrate(settings: Settings, *, show_plan: bool = False) -> int:
    """Apply pending migrations and print what was applied."""
    if show_plan:
        return cmd_plan(settings)
    found = found_migrations(settings)
    applied: list[migrations.Migration] = []
    after = migrations.migrate(
        settings.target,
        found,
        synchronous=settings.synchronous,
        on_applied=applied.append,
    )
    done = [m.name for m in applied]
    print(
        f"applied {len(done)} migration(s){': ' + ', '.join(done) if done else ''}; "
        f"schema version {_version(after.version)}"
    )
    return EXIT_OK


def cmd_status(settings: Settings) -> int:
    """List applied and pending versions; exit 0 only when clean."""
    found = found_migrations(settings)
    backend = migrations.backend_for(settings.target)
    applied = backend.read_history()
    state = migrations.state(found, history.checksums(applied))
    names = {m.version: m.name for m in found}
    exists = (
        not isinstance(settings.target, SqliteTarget) or settings.target.path.exists()
    )
    print(
        f"database: {backend.describe()}" + ("" if exists else " (does not exist yet)")
    )
    marks = history.marks(found, applied)
    for version, mark in marks.items():
        name = names.get(version) or applied[version].name
        if mark == "CONFLICT":
            name += f" (the database applied {applied[version].name})"
        print(f"  {version:04d}  {mark:<20} {name}")
    print(
        f"schema version: {_version(state.version)}; pending: {len(state.pending)}; "
        f"edited: {sum(m == 'EDITED' for m in marks.values())}; "
        f"conflicts: {sum(m == 'CONFLICT' for m in marks.values())}"
    )
    for problem in history.history_problems(found, applied):
        print(f"  {problem}")
    if state.edited:
        return EXIT_EDITED
    return EXIT_PENDING if state.pending else EXIT_OK


def cmd_new(settings: Settings, name: str) -> int:
    """Create the next numbered migration file."""
    folder = Path(str(settings.migrations_path or migrations.default_source()))
    file = folder / f"{next_stem(folder, name)}.sql"
    file.write_text(
        f"-- {file.stem}: say what this changes and why.\n"
        "-- Runs in one transaction together with its history row; no BEGIN/COMMIT.\n"
        "-- Runs on both engines; where their SQL differs, rename it to\n"
        "-- .sqlite.sql and write the .postgres.sql half beside it.\n"
        "-- A table rebuild (the 12 steps on sqlite.org/lang_altertable.html) adds\n"
        "-- the header line: -- migrate: foreign_keys=off\n"
    )
    print(file)
    return EXIT_OK


def cmd_makemigration(settings: Settings, name: str | None, *, check: bool) -> int:
    """Write the next migration from the entities, or (--check) fail if one is due."""
    folder = Path(str(settings.migrations_path or migrations.default_source()))
    if not check and not name:
        print("makemigration: give a NAME (or --check)", file=sys.stderr)
        return EXIT_CONFIG
    with scratch_source("postgres", settings.target) as server:
        if check:
            plans = makemigration.plan_both(folder, server)
        else:
            plans, paths = makemigration.write_both(folder, str(name), server)
    if not plans.changes:
        print("no changes")
        return EXIT_OK
    if check:
        print(
            "the entities need a migration that does not exist yet; run "
            "`python -m service makemigration NAME`:"
        )
    else:
        for path in paths:
            print(f"wrote {path}")
    for dialect, one in (("sqlite", plans.sqlite), ("postgres", plans.postgres)):
        for line in makemigration.summary_lines(one):
            print(f"  {dialect}: {line}")
    return EXIT_FAILED if check else EXIT_OK


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
        settings.target, found_migrations(settings), version
    )
    print(f"version {version}: checksum {old} -> {new}")
    return EXIT_OK
