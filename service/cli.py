"""Command line: serve, migrate, status, new, check, backup, accept-checksum."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from db import DatabaseError, StartupError, makemigration, sqlite
from db import migrate as migrations
from db.database import entity_schema_problems
from service import logs
from service.config import ConfigError, Settings, load_settings

log = logging.getLogger("service")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_PENDING = 3
EXIT_EDITED = 4


def _migrations(settings: Settings) -> list[migrations.Migration]:
    return migrations.discover(settings.migrations_path)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost: assume it is reachable


def cmd_serve(settings: Settings) -> int:
    """Bootstrap the database, then serve until SIGTERM/SIGINT."""
    from service.app import create_app, open_for
    from service.server import Server, install_signal_handlers

    started = time.perf_counter()
    if settings.admin_token is None and not _is_loopback(settings.host):
        log.warning(
            "SERVICE_ADMIN_TOKEN is unset and the service listens on %s: "
            "/v1/metadata is open to anyone who can reach it",
            settings.host,
            extra={"event": "open_metadata"},
        )
    database = open_for(settings)
    try:
        app = create_app(settings, database=database)
        server = Server(
            app,
            host=settings.host,
            port=settings.port,
            threads=settings.threads,
            shutdown_timeout=settings.shutdown_timeout,
            channel_timeout=settings.channel_timeout,
            connection_limit=settings.connection_limit,
            # The app answers oversized bodies itself (413 problem+json); waitress
            # only stops bodies far beyond that, before buffering them whole.
            max_request_body_size=settings.max_body_bytes * 4,
        )
        install_signal_handlers(server.stop)
        state = database.current_state()
        log.info(
            "ready on %s",
            server.url,
            extra={
                "event": "ready",
                "url": server.url,
                "schema_version": state.version,
                "database": str(settings.database_path),
                "startup_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        server.run()
        log.info("stopped accepting; in-flight requests drained")
    finally:
        database.close()
    return EXIT_OK


def cmd_migrate(settings: Settings) -> int:
    """Apply pending migrations and print what was applied."""
    found = _migrations(settings)
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
    found = _migrations(settings)
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
    file = folder / migrations.next_file_name(_migrations(settings), name)
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
    found = _migrations(settings)
    failed = False
    if settings.database_path.exists():
        state = migrations.inspect(settings.database_path, found)
        for version in state.edited:
            print(f"edited after it was applied: {version:04d}")
            failed = True
        if state.pending:
            print(f"pending on {settings.database_path}: {state.pending}")
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
    state = migrations.inspect(target, _migrations(settings))
    print(f"backup written to {target}: schema version {state.version}, integrity ok")
    return EXIT_OK


def cmd_accept_checksum(settings: Settings, version: int) -> int:
    """Record the edited file's checksum for an applied version."""
    old, new = migrations.accept_checksum(
        settings.database_path, _migrations(settings), version
    )
    print(f"version {version}: checksum {old} -> {new}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per task."""
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="migrate, check the schema, then serve HTTP")
    commands.add_parser("migrate", help="apply pending migrations")
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
    accept = commands.add_parser(
        "accept-checksum", help="accept an edited, applied file"
    )
    accept.add_argument("version", type=int)
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
    try:
        match args.command:
            case "serve":
                return serve(settings)
            case "migrate":
                return cmd_migrate(settings)
            case "status":
                return cmd_status(settings)
            case "new":
                return cmd_new(settings, args.name)
            case "makemigration":
                return cmd_makemigration(settings, args.name, check=args.check)
            case "check":
                return cmd_check(settings)
            case "backup":
                return cmd_backup(settings, args.path)
            case "accept-checksum":
                return cmd_accept_checksum(settings, args.version)
    except (StartupError, TimeoutError, OSError) as ex:
        log.critical("%s failed: %s", args.command, ex, extra={"event": "failed"})
        return EXIT_FAILED
    raise AssertionError(args.command)  # argparse only allows the commands above
