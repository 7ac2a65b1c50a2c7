"""Write the next migration from the entities: Pony's missing autogenerate.

For each engine, the schema the existing files produce is built by the
runner on a scratch database, the schema the entities need comes from
Pony's own DDL for that engine's provider, and the engine's planner
(db/schema/diff_sqlite.py: ALTER TABLE or the 12-step rebuild;
diff_postgres.py: plain ALTER TABLE) writes the SQL between them. When
the two engines' files would be the same, one NNNN_name.sql is written;
otherwise the .sqlite.sql and .postgres.sql halves. Nothing here opens
the live database.
"""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from db import migrate as migrate_module
from db.domain.entities import define_entities
from db.engines.base.plan import Plan, Snapshot
from db.engines.postgres import planner as diff_postgres
from db.engines.postgres import snapshot as expected_postgres
from db.engines.postgres.scratch import ServerScratch
from db.engines.sqlite import planner as diff_sqlite
from db.engines.sqlite.snapshot import entity_snapshot_sqlite, snapshot_sqlite
from db.errors import MigrationError
from db.migrations.files import next_stem
from db.schema.pony_ddl import DefineEntities
from db.schema.render import DESTRUCTIVE_HEADER as DESTRUCTIVE_HEADER
from db.schema.render import render as render
from db.schema.render import summary_lines as summary_lines

NOTHING_HERE = (
    "-- Nothing changes on this engine for this version; the statement keeps the\n"
    "-- version's two halves together.\nSELECT 1;\n"
)


def _runnable(
    migrations: list[migrate_module.Migration],
) -> list[migrate_module.Migration]:
    return [m for m in migrations if not m.empty]  # a file `new` just made: no SQL yet


def migrated_snapshot(
    migrations: list[migrate_module.Migration], scratch: Path
) -> Snapshot:
    """The SQLite schema the migration files produce, built by the runner itself."""
    path = scratch / "migrated.sqlite3"
    migrate_module.migrate(path, _runnable(migrations), announce=False)
    con = sqlite3.connect(path)
    try:
        return snapshot_sqlite(con)
    finally:
        con.close()


def plan_migration(folder: Path, define: DefineEntities = define_entities) -> Plan:
    """What the next SQLite migration must do for the files in folder to match define."""
    migrations = migrate_module.discover(folder)
    with tempfile.TemporaryDirectory(prefix="makemigration-") as scratch:
        old = migrated_snapshot(migrations, Path(scratch))
        new = entity_snapshot_sqlite(define, Path(scratch))
    return diff_sqlite.diff(old, new)


def plan_postgres(
    folder: Path, server: ServerScratch, define: DefineEntities = define_entities
) -> Plan:
    """What the next PostgreSQL migration must do, on scratch databases of server."""
    migrations = migrate_module.discover(folder, "postgres")
    with server.database() as migrated, server.database() as entities:
        migrate_module.migrate(migrated, _runnable(migrations), announce=False)
        old = expected_postgres.migrated_snapshot(migrated)
        new = expected_postgres.entity_snapshot(define, entities)
    return diff_postgres.diff(old, new)


@dataclass(frozen=True)
class Plans:
    """The next migration on each engine."""

    sqlite: Plan
    postgres: Plan

    @property
    def changes(self) -> bool:
        """Whether either engine needs a migration."""
        return bool(self.sqlite.changes or self.postgres.changes)


def plan_both(
    folder: Path, server: ServerScratch, define: DefineEntities = define_entities
) -> Plans:
    """The next migration for both engines."""
    return Plans(plan_migration(folder, define), plan_postgres(folder, server, define))


def _write(path: Path, text: str) -> Path:
    if path.exists():
        raise MigrationError(f"{path} already exists")
    path.write_text(text)
    return path


def write_migration(
    folder: Path, name: str, define: DefineEntities = define_entities
) -> tuple[Plan, Path | None]:
    """Write the SQLite half folder/NNNN_name.sqlite.sql; no file when nothing changed."""
    plan = plan_migration(folder, define)
    if not plan.changes:
        return plan, None
    stem = next_stem(folder, name)
    return plan, _write(folder / f"{stem}.sqlite.sql", render(plan, f"{stem}.sql"))


def write_both(
    folder: Path,
    name: str,
    server: ServerScratch,
    define: DefineEntities = define_entities,
) -> tuple[Plans, list[Path]]:
    """Write the next version: one shared file, or both halves; [] when nothing changed."""
    plans = plan_both(folder, server, define)
    if not plans.changes:
        return plans, []
    stem = next_stem(folder, name)
    texts = {
        dialect: render(plan, f"{stem}.sql") if plan.changes else NOTHING_HERE
        for dialect, plan in (("sqlite", plans.sqlite), ("postgres", plans.postgres))
    }
    if texts["sqlite"] == texts["postgres"]:
        return plans, [_write(folder / f"{stem}.sql", texts["sqlite"])]
    return plans, [
        _write(folder / f"{stem}.{d}.sql", text) for d, text in texts.items()
    ]
