"""`transfer SQLITE_PATH`: move an SQLite database's rows to PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path

from db import migrate as migrations
from db.engines.sqlite import errors as sqlite
from db.target import PostgresTarget
from service.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, found_migrations
from service.cli.failures import describe
from service.config import Settings


def cmd_transfer(settings: Settings, source: Path) -> int:
    """Migrate the PostgreSQL target, then copy every row of source into it."""
    target = settings.target
    if not isinstance(target, PostgresTarget):
        print(
            "transfer copies into PostgreSQL: set SERVICE_DATABASE_URL to the target",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    # psycopg2 is imported only for the commands that need it.
    from db.transfer import TransferError, transfer

    source = source.expanduser().absolute()
    migrations.migrate(target, found_migrations(settings))
    try:
        copied = transfer(
            source, target, lambda table, rows: print(f"  {table}: {rows} row(s)")
        )
    except TransferError as ex:
        print(f"transfer refused: {ex}", file=sys.stderr)
        return EXIT_FAILED
    except (sqlite.ERROR, OSError) as ex:
        # The source's own failures: name the file given, not the default path.
        print(f"transfer failed: {describe(source, ex)}", file=sys.stderr)
        return EXIT_FAILED
    total = sum(copied.tables.values())
    print(
        f"copied {total} row(s) from {source} to {target.describe()}; "
        "row counts and the search index verified"
    )
    return EXIT_OK
