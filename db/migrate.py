"""Apply schema_migrations/NNNN_slug.sql once each, in version order.

Decisions follow ../shared/reference/migrations.md: "applied" is set
membership on the version (never a high-water mark), each file runs in its
own BEGIN IMMEDIATE transaction together with its history row, an OS file
lock plus a re-check inside the transaction makes concurrent starts safe,
and checksums ignore line endings and a BOM.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources.abc import Traversable
from pathlib import Path

from db.dialects import sqlite, sqlite_schema
from db.errors import MigrationError
from db.records import AppliedMigration, SchemaState

log = logging.getLogger(__name__)

FILE_PATTERN = re.compile(r"^(?P<version>\d{4,})_(?P<slug>[a-z0-9][a-z0-9_]*)\.sql$")
CHECKSUM_ALGORITHM = "sha256-lf"
HEADER_FOREIGN_KEYS_OFF = re.compile(
    r"^--\s*migrate:\s*foreign_keys\s*=\s*off\s*$", re.I
)
HISTORY_TABLE = "schema_migrations"
LOG_TABLE = "schema_migrations_log"

_TRACKING_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        checksum TEXT NOT NULL,
        applied_at TEXT NOT NULL,
        execution_ms REAL NOT NULL
    )""",
    f"""CREATE TABLE IF NOT EXISTS {LOG_TABLE} (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        version INTEGER,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
    )""",
)


@dataclass(frozen=True)
class Migration:
    """One migration file, read and checksummed."""

    version: int
    name: str  # the file name, e.g. 0001_create_app_metadata.sql
    sql: str
    checksum: str
    foreign_keys_off: bool

    @property
    def statements(self) -> list[str]:
        """The file's statements, split the way SQLite reads them."""
        return sqlite_schema.split_statements(self.sql)


def default_source() -> Traversable:
    """The migrations shipped as package data (the repo's schema_migrations/)."""
    return importlib.resources.files("schema_migrations")


def normalise(raw: bytes) -> str:
    """Decode a file and normalise what editors change silently."""
    text = raw.decode("utf-8-sig")  # drops a BOM
    return text.replace("\r\n", "\n").replace("\r", "\n")


def checksum(text: str) -> str:
    """Checksum of normalised text, tagged with its algorithm."""
    return f"{CHECKSUM_ALGORITHM}:{hashlib.sha256(text.encode()).hexdigest()}"


def _header_lines(text: str) -> Iterable[str]:
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            return
        yield stripped


def read_migration(version: int, name: str, raw: bytes) -> Migration:
    """Parse one file and lint it; raise MigrationError naming the file."""
    try:
        text = normalise(raw)
    except UnicodeDecodeError as ex:
        raise MigrationError(f"{name}: not valid UTF-8 ({ex.reason})") from ex
    fk_off = any(HEADER_FOREIGN_KEYS_OFF.match(line) for line in _header_lines(text))
    migration = Migration(version, name, text, checksum(text), fk_off)
    statements = migration.statements
    if not statements:
        raise MigrationError(f"{name}: contains no SQL statement")
    for number, statement in enumerate(statements, 1):
        keyword = sqlite_schema.forbidden_statement(statement)
        if keyword:
            hint = (
                "; declare '-- migrate: foreign_keys=off' in the header instead"
                if "FOREIGN_KEYS" in keyword
                else "; the runner owns the transaction"
            )
            raise MigrationError(
                f"{name}: statement {number} uses {keyword}, which a migration "
                f"must not contain{hint}"
            )
    return migration


def discover(source: Traversable | Path | None = None) -> list[Migration]:
    """Read every migration file in version order; refuse ambiguous folders."""
    folder = source if source is not None else default_source()
    if not folder.is_dir():
        raise MigrationError(f"migrations folder not found: {folder}")
    by_version: dict[int, Migration] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue  # __init__.py, README and the like
        match = FILE_PATTERN.match(entry.name)
        if not match:
            raise MigrationError(
                f"{entry.name}: migration files are named NNNN_slug.sql "
                "(digits, underscore, lower-case letters, digits and underscores)"
            )
        version = int(match["version"])
        if version in by_version:
            raise MigrationError(
                f"two migrations share version {version}: "
                f"{by_version[version].name} and {entry.name}"
            )
        by_version[version] = read_migration(version, entry.name, entry.read_bytes())
    return [by_version[v] for v in sorted(by_version)]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _log_event(
    con: sqlite3.Connection, version: int | None, action: str, detail: str
) -> None:
    """Write one audit row in its own small transaction."""
    con.execute(sqlite.BEGIN_WRITE)
    try:
        con.execute(
            f"INSERT INTO {LOG_TABLE} (at, version, action, detail) VALUES (?, ?, ?, ?)",
            (_now(), version, action, detail),
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _has_tracking(con: sqlite3.Connection) -> bool:
    row = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
        (HISTORY_TABLE,),
    ).fetchone()
    return row is not None


def applied_migrations(con: sqlite3.Connection) -> dict[int, AppliedMigration]:
    """The history table's rows by version (empty before the first run)."""
    if not _has_tracking(con):
        return {}
    rows = con.execute(
        f"SELECT version, name, checksum, applied_at, execution_ms FROM {HISTORY_TABLE}"
    )
    return {row[0]: AppliedMigration(*row) for row in rows}


def state(migrations: list[Migration], applied: dict[int, str]) -> SchemaState:
    """Compare files with applied versions and their checksums.

    Gives the pending, unknown (no file) and edited (checksum differs) versions.
    """
    files = {m.version: m for m in migrations}
    return SchemaState(
        version=max(applied) if applied else None,
        applied=sorted(applied),
        pending=sorted(set(files) - set(applied)),
        unknown=sorted(set(applied) - set(files)),
        edited=sorted(
            v for v in applied if v in files and applied[v] != files[v].checksum
        ),
    )


def _checksums(applied: dict[int, AppliedMigration]) -> dict[int, str]:
    return {version: row.checksum for version, row in applied.items()}


def _edited_error(migration: Migration, stored: AppliedMigration) -> MigrationError:
    return MigrationError(
        f"{migration.name} was edited after it was applied "
        f"(stored {stored.checksum[-12:]}, file {migration.checksum[-12:]}); "
        "restore the file, or accept the change with "
        f"`python -m service accept-checksum {migration.version}`"
    )


def _check_history(
    migrations: list[Migration], applied: dict[int, AppliedMigration]
) -> SchemaState:
    current = state(migrations, _checksums(applied))
    files = {m.version: m for m in migrations}
    for version in current.edited:
        raise _edited_error(files[version], applied[version])
    for version in current.unknown:
        log.warning(
            "database has migration %s (%s) that this code does not ship; "
            "starting anyway (an older release on a newer database)",
            version,
            applied[version].name,
        )
    return current


def _execute(con: sqlite3.Connection, migration: Migration) -> None:
    for number, statement in enumerate(migration.statements, 1):
        try:
            con.execute(statement)
        except sqlite3.Error as ex:
            first = " ".join(statement.split())
            shown = first if len(first) <= 120 else first[:117] + "..."
            raise MigrationError(
                f"{migration.name} failed at statement {number} ({shown}): {ex}"
            ) from ex


def _apply_one(con: sqlite3.Connection, migration: Migration) -> bool:
    """Apply one file with its history row; False if another process did."""
    started = time.perf_counter()
    con.execute(sqlite.BEGIN_WRITE)
    try:
        # Re-check under the write lock: another process may have won.
        done = con.execute(
            f"SELECT 1 FROM {HISTORY_TABLE} WHERE version = ?", (migration.version,)
        ).fetchone()
        if done:
            con.execute("ROLLBACK")
            return False
        _execute(con, migration)
        if migration.foreign_keys_off:
            violations = sqlite_schema.foreign_key_violations(con)
            if violations:
                shown = ", ".join(
                    f"{table} row {rowid} -> {parent}"
                    for table, rowid, parent, _ in violations[:5]
                )
                raise MigrationError(
                    f"{migration.name} leaves {len(violations)} foreign key "
                    f"violation(s): {shown}"
                )
        con.execute(
            f"INSERT INTO {HISTORY_TABLE} (version, name, checksum, applied_at, execution_ms) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                migration.version,
                migration.name,
                migration.checksum,
                _now(),
                round((time.perf_counter() - started) * 1000, 3),
            ),
        )
        con.execute("COMMIT")
        return True
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise


def _ensure_tracking(con: sqlite3.Connection) -> None:
    if _has_tracking(con):
        return
    foreign = [
        t for t in sqlite_schema.user_tables(con) if t not in (HISTORY_TABLE, LOG_TABLE)
    ]
    if foreign:
        # Never guess what an untracked schema is: running 0001 on top of it
        # would fail or, worse, half-succeed.
        raise MigrationError(
            "database has tables but no migration history "
            f"({', '.join(foreign[:5])}); it was not created by these migrations"
        )
    con.execute(sqlite.BEGIN_WRITE)
    try:
        for ddl in _TRACKING_DDL:
            con.execute(ddl)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def migrate(
    path: Path,
    migrations: list[Migration],
    *,
    apply: bool = True,
    synchronous: str = "NORMAL",
    lock_timeout: float = 120.0,
) -> SchemaState:
    """Bring the database at path up to date (or, with apply=False, verify it).

    Returns the state after the run. Raises MigrationError on an edited or
    failing file, and on pending files when apply is False.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite.migration_lock(path, lock_timeout):
        con = sqlite.connect(path, synchronous)
        try:
            if apply:
                _ensure_tracking(con)
            applied = applied_migrations(con)
            current = _check_history(migrations, applied)
            if not current.pending:
                return current
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
                    if migration.foreign_keys_off:
                        with sqlite_schema.foreign_keys_disabled(con):
                            did = _apply_one(con, migration)
                    else:
                        did = _apply_one(con, migration)
                except MigrationError as ex:
                    _log_event(con, migration.version, "failed", str(ex))
                    raise
                if did:
                    log.info("applied migration %s", migration.name)
                    if migration.version < newest:
                        _log_event(
                            con,
                            migration.version,
                            "out_of_order",
                            f"newest was {newest}",
                        )
            return state(migrations, _checksums(applied_migrations(con)))
        finally:
            con.close()


def inspect(path: Path, migrations: list[Migration]) -> SchemaState:
    """Read the state without writing anything (a missing file has nothing applied)."""
    if not path.exists():
        return state(migrations, {})
    con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return state(migrations, _checksums(applied_migrations(con)))
    finally:
        con.close()


def accept_checksum(
    path: Path, migrations: list[Migration], version: int
) -> tuple[str, str]:
    """Record the current file's checksum for an applied version; audited."""
    files = {m.version: m for m in migrations}
    if version not in files:
        raise MigrationError(f"no migration file has version {version}")
    migration = files[version]
    with sqlite.migration_lock(path):
        con = sqlite.connect(path)
        try:
            stored = applied_migrations(con).get(version)
            if stored is None:
                raise MigrationError(
                    f"{migration.name} is not applied; nothing to accept"
                )
            con.execute(sqlite.BEGIN_WRITE)
            con.execute(
                f"UPDATE {HISTORY_TABLE} SET checksum = ? WHERE version = ?",
                (migration.checksum, version),
            )
            con.execute(
                f"INSERT INTO {LOG_TABLE} (at, version, action, detail) VALUES (?, ?, ?, ?)",
                (
                    _now(),
                    version,
                    "accept_checksum",
                    f"{stored.checksum} -> {migration.checksum}",
                ),
            )
            con.execute("COMMIT")
            return stored.checksum, migration.checksum
        finally:
            con.close()


def next_file_name(migrations: list[Migration], slug: str) -> str:
    """The file name the next migration called slug gets."""
    clean = re.sub(r"[^a-z0-9]+", "_", slug.lower()).strip("_")
    if not clean:
        raise MigrationError(f"migration name {slug!r} has no letters or digits")
    version = max((m.version for m in migrations), default=0) + 1
    return f"{version:04d}_{clean}.sql"
