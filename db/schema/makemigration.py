"""Write the next migration from the entities: Pony's missing autogenerate.

For each engine, the schema the existing files produce is built by the
runner on a scratch database, the schema the entities need comes from
Pony's own DDL for that engine's provider (expected.py), and the
engine's planner (db/engines/sqlite/planner.py: ALTER TABLE or the
12-step rebuild; db/engines/postgres/planner.py: plain ALTER TABLE)
writes the SQL between them. When the two engines' files would be the
same, one NNNN_name.sql is written; otherwise the .sqlite.sql and
.postgres.sql halves. Nothing here opens the live database.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from db.domain.entities import define_entities
from db.engines import engine_for, scratch_source
from db.engines.base.engine import ScratchSource
from db.engines.base.plan import Plan
from db.engines.base.sql import Dialect
from db.errors import MigrationError
from db.migrations.files import Migration, discover, next_stem
from db.migrations.runner import migrate
from db.schema.expected import entity_snapshot
from db.schema.pony_ddl import DefineEntities
from db.schema.render import DESTRUCTIVE_HEADER as DESTRUCTIVE_HEADER
from db.schema.render import render as render
from db.schema.render import summary_lines as summary_lines

NOTHING_HERE = (
    "-- Nothing changes on this engine for this version; the statement keeps the\n"
    "-- version's two halves together.\nSELECT 1;\n"
)


def _runnable(migrations: list[Migration]) -> list[Migration]:
    return [m for m in migrations if not m.empty]  # a file `new` just made: no SQL yet


def plan(
    dialect: Dialect,
    folder: Path,
    source: ScratchSource,
    define: DefineEntities = define_entities,
) -> Plan:
    """What the next migration must do on one engine, on scratch databases of source."""
    migrations = discover(folder, dialect)
    with source.database() as migrated, source.database() as entities:
        migrate(migrated, _runnable(migrations), announce=False)
        old = engine_for(migrated).snapshot()
        new = entity_snapshot(define, engine_for(entities))
        return engine_for(migrated).plan(old, new)


def plan_migration(folder: Path, define: DefineEntities = define_entities) -> Plan:
    """What the next SQLite migration must do for the files in folder to match define."""
    with scratch_source("sqlite") as source:
        return plan("sqlite", folder, source, define)


def plan_postgres(
    folder: Path, server: ScratchSource, define: DefineEntities = define_entities
) -> Plan:
    """What the next PostgreSQL migration must do, on scratch databases of server."""
    return plan("postgres", folder, server, define)


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
    folder: Path, server: ScratchSource, define: DefineEntities = define_entities
) -> Plans:
    """The next migration for both engines (PostgreSQL's scratch databases on server)."""
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
    planned = plan_migration(folder, define)
    if not planned.changes:
        return planned, None
    stem = next_stem(folder, name)
    return planned, _write(
        folder / f"{stem}.sqlite.sql", render(planned, f"{stem}.sql")
    )


def write_both(
    folder: Path,
    name: str,
    server: ScratchSource,
    define: DefineEntities = define_entities,
) -> tuple[Plans, list[Path]]:
    """Write the next version: one shared file, or both halves; [] when nothing changed."""
    plans = plan_both(folder, server, define)
    if not plans.changes:
        return plans, []
    stem = next_stem(folder, name)
    texts = {
        dialect: render(planned, f"{stem}.sql") if planned.changes else NOTHING_HERE
        for dialect, planned in (("sqlite", plans.sqlite), ("postgres", plans.postgres))
    }
    if texts["sqlite"] == texts["postgres"]:
        return plans, [_write(folder / f"{stem}.sql", texts["sqlite"])]
    return plans, [
        _write(folder / f"{stem}.{d}.sql", text) for d, text in texts.items()
    ]
