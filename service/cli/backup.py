"""`backup`: a consistent, verified copy of the live database."""

from __future__ import annotations

import sys
from pathlib import Path

from db import migrate as migrations
from db.engines.sqlite import backup as sqlite_backup
from db.errors import DatabaseError
from db.target import PostgresTarget
from service.cli.common import EXIT_FAILED, EXIT_OK, found_migrations
from service.cli.failures import describe
from service.config import Settings


def cmd_backup(settings: Settings, target: Path, *, force: bool = False) -> int:
    """Copy the live database consistently, verify the copy, report its version."""
    if isinstance(settings.target, PostgresTarget):
        return _backup_postgres(settings, settings.target, target, force=force)
    if not settings.database_path.exists():
        print(f"no database at {settings.database_path}", file=sys.stderr)
        return EXIT_FAILED
    try:
        final = sqlite_backup.check_target(settings.database_path, target, force=force)
        result = sqlite_backup.backup(settings.database_path, target, force=force)
    except sqlite_backup.BackupTargetError as ex:
        print(str(ex), file=sys.stderr)
        return EXIT_FAILED
    except DatabaseError as ex:
        text = str(ex)
        # The copy is written through a temporary file made beforehand, so
        # these are about the source.
        if any(
            cause in text
            for cause in ("malformed", "not a database", "unable to open database")
        ):
            text = describe(settings.database_path, ex)
        print(f"backup to {target} failed: {text}", file=sys.stderr)
        return EXIT_FAILED
    if result != "ok":
        print(f"backup failed integrity_check: {result}", file=sys.stderr)
        return EXIT_FAILED
    state = migrations.inspect(final, found_migrations(settings))
    print(f"backup written to {final}: schema version {state.version}, integrity ok")
    return EXIT_OK


def _backup_postgres(
    settings: Settings, database: PostgresTarget, target: Path, *, force: bool
) -> int:
    """pg_dump into target when pg_dump is installed; one line either way."""
    # psycopg2 is imported only for the commands that need it.
    from db.engines.postgres import backup as postgres_backup

    try:
        done = postgres_backup.dump(database, target, force=force)
    except postgres_backup.BackupError as ex:
        print(f"backup failed: {ex}", file=sys.stderr)
        return EXIT_FAILED
    state = migrations.inspect(database, found_migrations(settings))
    print(
        f"backup written to {done.path} by {done.tool} (custom format, "
        f"{done.entries} entries): schema version {state.version}; restore it into "
        f"an empty database with pg_restore --dbname=URL {done.path}"
    )
    return EXIT_OK
