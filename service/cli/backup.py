"""`backup`: a consistent, verified copy of the live database."""

from __future__ import annotations

import sys
from pathlib import Path

from db import DatabaseError
from db import migrate as migrations
from db.dialects import sqlite
from service.cli.common import EXIT_FAILED, EXIT_OK, found_migrations
from service.config import Settings


def cmd_backup(settings: Settings, target: Path) -> int:
    """Copy the live database consistently, verify the copy, report its version."""
    if not settings.database_path.exists():
        print(f"no database at {settings.database_path}", file=sys.stderr)
        return EXIT_FAILED
    target = target.expanduser().absolute()
    if target.resolve() == settings.database_path.resolve():
        print(
            "backup target is the live database itself; choose another path",
            file=sys.stderr,
        )
        return EXIT_FAILED
    try:
        result = sqlite.backup(settings.database_path, target)
    except DatabaseError as ex:
        print(f"backup to {target} failed: {ex}", file=sys.stderr)
        return EXIT_FAILED
    if result != "ok":
        print(f"backup failed integrity_check: {result}", file=sys.stderr)
        return EXIT_FAILED
    state = migrations.inspect(target, found_migrations(settings))
    print(f"backup written to {target}: schema version {state.version}, integrity ok")
    return EXIT_OK
