"""Command line: serve, and the database's tools (`--help` lists every command)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from db.errors import StartupError
from db.session import DRIVER_ERRORS
from service import __version__, logs
from service.cli.backup import cmd_backup
from service.cli.check import cmd_check
from service.cli.common import EXIT_CONFIG, EXIT_FAILED
from service.cli.failures import (
    DatabaseFileError,
    check_database_path,
    check_writable,
    describe,
    missing_driver,
    naming_the_setting,
)
from service.cli.migrations import (
    cmd_accept_checksum,
    cmd_baseline,
    cmd_makemigration,
    cmd_migrate,
    cmd_new,
    cmd_status,
)
from service.cli.serve import cmd_serve
from service.cli.transfer import cmd_transfer
from service.config import ConfigError, Settings, load_settings
from service.settings_doc import help_text

log = logging.getLogger("service")
# Commands that open SERVICE_DATABASE_PATH (new and makemigration do not).
_USES_DATABASE_FILE = frozenset(
    {"serve", "migrate", "status", "check", "backup", "baseline", "accept-checksum"}
)
# Those of them that write it: a read-only file is refused before they start.
_WRITES_DATABASE_FILE = frozenset({"serve", "migrate", "baseline", "accept-checksum"})
_DATABASE_FAILURES: tuple[type[Exception], ...] = DRIVER_ERRORS  # OSError too


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per task."""
    parser = argparse.ArgumentParser(prog="python -m service")
    parser.add_argument(
        "--version", action="version", version=f"service-foundation {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "serve",
        help="migrate, check the schema, then serve HTTP",
        description="Migrate (SERVICE_MIGRATE), check the schema, then serve HTTP\n"
        "until SIGTERM, SIGINT or SIGHUP, which drain and exit 0.",
        epilog=help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    migrate = commands.add_parser("migrate", help="apply pending migrations")
    migrate.add_argument(
        "--plan",
        action="store_true",
        help="print the pending files, their statements and header modes; run "
        "nothing (exit 3 when something is pending)",
    )
    commands.add_parser(
        "status", help="applied and pending migrations (exit 0 when clean)"
    )
    new = commands.add_parser("new", help="create the next migration file")
    new.add_argument("name")
    make = commands.add_parser(
        "makemigration", help="write the next migration from the entities' changes"
    )
    make.add_argument("name", nargs="?", help="slug of the new file (NNNN_name.sql)")
    make.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the entities need a migration (for CI)",
    )
    commands.add_parser("check", help="validate checksums and the entity mapping")
    backup = commands.add_parser("backup", help="consistent copy of the live database")
    backup.add_argument("path", type=Path)
    backup.add_argument(
        "--force", action="store_true", help="replace the file at PATH if it exists"
    )
    adopt = commands.add_parser(
        "baseline",
        help="adopt a database these migrations did not create: record files "
        "1..VERSION as applied if its schema is what they create",
    )
    adopt.add_argument("version", type=int)
    accept = commands.add_parser(
        "accept-checksum", help="accept an edited, applied file"
    )
    accept.add_argument("version", type=int)
    move = commands.add_parser(
        "transfer",
        help="copy every row of an SQLite database into the (empty) PostgreSQL "
        "database SERVICE_DATABASE_URL names",
    )
    move.add_argument("sqlite_path", type=Path, metavar="SQLITE_PATH")
    # From the table above, so that it names every command.
    parser.description = (
        "service-foundation: an HTTP service and its database's tools. Commands: "
        + ", ".join(commands.choices)
        + ". Settings come from SERVICE_* variables (serve --help lists them)."
    )
    return parser


def main(
    argv: Sequence[str] | None = None, serve: Callable[[Settings], int] = cmd_serve
) -> int:
    """Run one command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as ex:
        # Logging is not set up yet (its level may be the bad value): plain line.
        print(f"configuration error: {ex}", file=sys.stderr)
        return EXIT_CONFIG
    logs.configure(settings.log_level)
    path = settings.database_path
    try:
        if args.command in _USES_DATABASE_FILE and settings.target.dialect == "sqlite":
            check_database_path(path)
            if args.command in _WRITES_DATABASE_FILE:
                check_writable(path)
        match args.command:
            case "serve":
                return serve(settings)
            case "migrate":
                return cmd_migrate(settings, show_plan=args.plan)
            case "status":
                return cmd_status(settings)
            case "new":
                return cmd_new(settings, args.name)
            case "makemigration":
                return cmd_makemigration(settings, args.name, check=args.check)
            case "check":
                return cmd_check(settings)
            case "backup":
                return cmd_backup(settings, args.path, force=args.force)
            case "baseline":
                return cmd_baseline(settings, args.version)
            case "accept-checksum":
                return cmd_accept_checksum(settings, args.version)
            case "transfer":
                return cmd_transfer(settings, args.sqlite_path)
    except (DatabaseFileError, StartupError, TimeoutError) as ex:
        cause = naming_the_setting(str(ex), ex, settings)
        log.critical(
            "%s failed: %s", args.command, cause, extra={"event.action": "failed"}
        )
        return EXIT_FAILED
    except ImportError as ex:
        if not (ex.name or "").startswith("psycopg2"):
            raise
        cause = missing_driver(args.command, settings)
        log.critical(
            "%s failed: %s", args.command, cause, extra={"event.action": "failed"}
        )
        return EXIT_FAILED
    except _DATABASE_FAILURES as ex:
        # Never a traceback: one line naming the cause (corrupt, read-only...).
        cause = naming_the_setting(describe(path, ex), ex, settings)
        log.critical(
            "%s failed: %s", args.command, cause, extra={"event.action": "failed"}
        )
        return EXIT_FAILED
    raise AssertionError(args.command)  # argparse only allows the commands above
