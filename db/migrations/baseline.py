"""`baseline VERSION`: adopt a database these migrations did not create.

Files 1..VERSION run on a scratch database of the same engine; only when
the live database's schema equals what they created (the deep comparison
of same.py) are those versions recorded as applied, with the
files' checksums, how='baselined' and an audit row each. Otherwise
nothing is written and the error names every table and column that
differs.
"""

from __future__ import annotations

from pathlib import Path

from db.engines import migration_backend
from db.engines.base.migration import AppliedMigration, Record
from db.engines.base.schema import FullSchema
from db.engines.base.sql import Dialect
from db.errors import MigrationError
from db.migrations.files import Migration
from db.migrations.runner import DEFAULT_LOCK_TIMEOUT, migrate
from db.migrations.same import differences
from db.migrations.scratch import scratch_like
from db.target import DatabaseTarget, SqliteTarget

SHOWN = 12  # differences listed in the error; the count says how many more


def _expected(target: DatabaseTarget | Path, files: list[Migration]) -> FullSchema:
    with scratch_like(target) as scratch:
        migrate(scratch, files, announce=False)
        with migration_backend(scratch).session(DEFAULT_LOCK_TIMEOUT) as session:
            return session.full_schema()


def _has_history(where: str, history: dict[int, AppliedMigration]) -> MigrationError:
    return MigrationError(
        f"{where} already has a migration history (versions "
        f"{', '.join(map(str, sorted(history)))}); baseline is for a database "
        "these migrations did not create"
    )


def _compare(
    expected: FullSchema, actual: FullSchema, where: str, version: int, dialect: Dialect
) -> None:
    found = differences(expected, actual, dialect)
    if found:
        more = len(found) - SHOWN
        raise MigrationError(
            f"the schema of {where} is not what files 1..{version} create, nothing "
            f"recorded: {'; '.join(found[:SHOWN])}"
            + (f"; and {more} more" if more > 0 else "")
        )


def baseline(
    target: DatabaseTarget | Path, migrations: list[Migration], version: int
) -> list[Migration]:
    """Record files 1..version as applied if the schema is what they create."""
    files = [m for m in migrations if m.version <= version]
    if version not in {m.version for m in migrations}:
        raise MigrationError(f"no migration file has version {version}")
    if isinstance(target, Path):
        target = SqliteTarget(target)
    if isinstance(target, SqliteTarget) and not target.path.exists():
        raise MigrationError(f"no database at {target.path}: nothing to adopt")
    backend = migration_backend(target)
    history = backend.read_history()
    if history:
        raise _has_history(backend.describe(), history)
    expected = _expected(target, files)
    # First without writing anything (a refusal leaves the file as it was),
    # then again under the lock before recording.
    _compare(
        expected,
        backend.read_full_schema(),
        backend.describe(),
        version,
        backend.dialect,
    )
    with backend.session(DEFAULT_LOCK_TIMEOUT) as session:
        if session.has_tracking() and session.history():
            raise _has_history(backend.describe(), session.history())
        if not session.user_tables():
            raise MigrationError(
                f"{backend.describe()} has no tables: there is nothing to adopt, "
                "`python -m service migrate` creates the schema"
            )
        _compare(
            expected,
            session.full_schema(),
            backend.describe(),
            version,
            backend.dialect,
        )
        session.ensure_tracking()
        session.record(
            [Record(m, how="baselined") for m in files],
            "baseline",
            f"schema equal to files 1..{version}",
        )
    return files
