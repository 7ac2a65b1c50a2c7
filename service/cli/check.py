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

import contextlib
from pathlib import Path

from db import migrate as migrations
from db.engines import scratch_source
from db.engines.base.engine import ScratchSource
from db.engines.base.sql import Dialect
from db.errors import MigrationError
from db.migrations import history, lint
from db.migrations.files import DIALECTS, Migration, catalog, discover
from db.schema import check as schemacheck
from db.schema import makemigration
from db.target import DatabaseTarget, SqliteTarget
from service.cli.common import EXIT_FAILED, EXIT_OK
from service.config import Settings


def _live_pending(
    target: DatabaseTarget, found: list[Migration], problems: list[str]
) -> set[int]:
    """Versions pending on the live database (every one when it does not exist)."""
    pending = {m.version for m in found}
    if isinstance(target, SqliteTarget) and not target.path.exists():
        return pending
    backend = migrations.backend_for(target)
    applied = backend.read_history()
    problems += history.history_problems(found, applied)
    pending -= set(applied)
    if pending:
        print(f"pending on {backend.describe()}: {sorted(pending)}")
    return pending


def _check_engine(
    folder: Path,
    found: list[Migration],
    pending: set[int],
    dialect: Dialect,
    source: ScratchSource,
) -> list[str]:
    """The lint, the entity comparison and the generator's plan on one engine."""
    problems = [
        history.empty_message(m) for m in found if m.empty and m.version in pending
    ]
    with source.database() as scratch:
        findings = lint.lint(found, pending, scratch)
    for finding in findings:
        if finding.acknowledged:
            print(f"{dialect}: destructive: {finding}")
        else:
            problems.append(f"destructive: {finding}")
    problems += [
        f"entities vs migrations: {p}"
        for p in schemacheck.migrations_problems(found, source)
    ]
    plan = makemigration.plan(dialect, folder, source)
    problems += [
        "the entities need a migration that does not exist yet "
        f"(`python -m service makemigration NAME`): {change.summary}"
        for change in plan.changes
    ]
    return problems


def cmd_check(settings: Settings) -> int:
    """Validate the files, the live history, the lint and the entities on both engines."""
    folder = Path(str(settings.migrations_path or migrations.default_source()))
    target = settings.target
    problems: list[str] = []
    for group in catalog(folder):
        if group.missing_half():
            problems.append(str(group.missing_half()))
    per_engine: dict[Dialect, list[Migration]] = {}
    for dialect in DIALECTS:
        try:
            per_engine[dialect] = discover(folder, dialect)
        except MigrationError as ex:
            if str(ex) not in problems:
                problems.append(f"{dialect}: {ex}")
    pending_live: set[int] = set()
    if target.dialect in per_engine:
        pending_live = _live_pending(target, per_engine[target.dialect], problems)
    with contextlib.ExitStack() as stack:
        for dialect, found in per_engine.items():
            pending = (
                pending_live
                if dialect == target.dialect
                else {m.version for m in found}
            )
            try:
                source = stack.enter_context(scratch_source(dialect, target))
            except MigrationError as ex:
                problems.append(f"{dialect}: cannot check: {ex}")
                continue
            problems += [
                f"{dialect}: {p}"
                for p in _check_engine(folder, found, pending, dialect, source)
            ]
    for problem in problems:
        print(problem)
    if problems:
        print(f"check failed: {len(problems)} problem(s)")
        return EXIT_FAILED
    count = len({m.version for found in per_engine.values() for m in found})
    print(f"ok: {count} migration(s) match the entities on SQLite and PostgreSQL")
    return EXIT_OK
