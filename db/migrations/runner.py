"""Apply pending migrations once each, in version order, on either engine.

Decisions follow ../shared/reference/migrations.md: "applied" is set
membership on the version, each file runs in its own transaction together
with its history row, a lock plus a re-check inside the transaction makes
concurrent starts safe, and checksums ignore line endings and a BOM. How
the lock and the transaction work on each engine is the Backend's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from db.engines import migration_backend
from db.engines.base.migration import Backend
from db.errors import MigrationError
from db.migrations.files import Migration
from db.migrations.history import (
    SchemaState,
    check_history,
    checksums,
    empty_message,
    is_conflict,
    mismatch_message,
    state,
    untracked_error,
)
from db.target import DatabaseTarget

log = logging.getLogger("db.migrate")

DEFAULT_LOCK_TIMEOUT = 120.0


def _backend(target: DatabaseTarget | Path | Backend, synchronous: str) -> Backend:
    if isinstance(target, DatabaseTarget | Path):
        return migration_backend(target, synchronous)
    return target


def migrate(
    target: DatabaseTarget | Path | Backend,
    migrations: list[Migration],
    *,
    apply: bool = True,
    synchronous: str = "NORMAL",
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    announce: bool = True,
    on_applied: Callable[[Migration], None] | None = None,
) -> SchemaState:
    """Bring the database up to date (or, with apply=False, verify it).

    Returns the state after the run. Raises MigrationError on an edited or
    failing file, and on pending files when apply is False. announce=False
    keeps quiet about each file applied (scratch databases); on_applied is
    called with each file this run applied (not those another process did).
    """
    backend = _backend(target, synchronous)
    with backend.session(lock_timeout) as session:
        if apply and not session.has_tracking():
            # Never guess what an untracked schema is: running 0001 on top
            # of it would fail or, worse, half-succeed.
            foreign = session.user_tables()
            if foreign:
                raise untracked_error(foreign)
        if apply:
            session.ensure_tracking()
        applied = session.history()
        current = check_history(migrations, applied)
        if not current.pending:
            return current
        for migration in migrations:
            if migration.empty and migration.version in current.pending:
                raise MigrationError(empty_message(migration))
        if not apply:
            names = ", ".join(
                m.name for m in migrations if m.version in current.pending
            )
            raise MigrationError(
                f"pending migrations (SERVICE_MIGRATE=verify): {names}"
            )
        newest = max(applied) if applied else 0
        for migration in migrations:
            if migration.version not in current.pending:
                continue
            if migration.version < newest:
                log.warning(
                    "applying %s out of order: the database already has %s",
                    migration.name,
                    newest,
                )
            try:
                did = session.apply(migration)
            except MigrationError as ex:
                session.log_event(migration.version, "failed", str(ex))
                raise
            if did:
                if on_applied is not None:
                    on_applied(migration)
                if announce:
                    log.info("applied migration %s", migration.name)
                if migration.version < newest:
                    session.log_event(
                        migration.version, "out_of_order", f"newest was {newest}"
                    )
        return state(migrations, checksums(session.history()))


def inspect(
    target: DatabaseTarget | Path | Backend, migrations: list[Migration]
) -> SchemaState:
    """Read the state without writing anything (a missing file has nothing applied)."""
    backend = _backend(target, "NORMAL")
    return state(migrations, checksums(backend.read_history()))


def accept_checksum(
    target: DatabaseTarget | Path | Backend, migrations: list[Migration], version: int
) -> tuple[str, str]:
    """Record the current file's checksum for an applied version; audited."""
    files = {m.version: m for m in migrations}
    if version not in files:
        raise MigrationError(f"no migration file has version {version}")
    migration = files[version]
    backend = _backend(target, "NORMAL")
    with backend.session(DEFAULT_LOCK_TIMEOUT) as session:
        stored = session.history().get(version)
        if stored is None:
            raise MigrationError(f"{migration.name} is not applied; nothing to accept")
        if is_conflict(migration, stored):
            raise MigrationError(mismatch_message(migration, stored, migrations))
        session.set_checksum(
            version, migration.checksum, f"{stored.checksum} -> {migration.checksum}"
        )
        return stored.checksum, migration.checksum
