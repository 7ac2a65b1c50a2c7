"""Everything SQLite-specific in one seam: pragmas, locks, rebuilds, schema.

The rest of db/ talks to this module rather than to sqlite3 pragmas
directly, so a move to PostgreSQL replaces this file, not the callers.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from db.errors import DatabaseError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
# How every writing transaction starts: IMMEDIATE takes SQLite's write lock
# at BEGIN (waiting up to busy_timeout), so a transaction never fails at its
# first write after having read a snapshot another writer made stale.
BEGIN_WRITE = "BEGIN IMMEDIATE"


def to_stored(moment: datetime) -> str:
    """An aware datetime as the naive UTC text Pony stores on SQLite."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # Positional arguments and slicing off "+00:00": half the time of
    # replace(tzinfo=None).isoformat(sep=..., timespec=...).
    return moment.isoformat(" ", "microseconds")[:-6]


def from_stored(stored: str) -> datetime:
    """Stored timestamp text (naive UTC, as Pony writes it) as an aware datetime."""
    try:
        moment = datetime.fromisoformat(stored + "+00:00")
    except ValueError:  # not written by us: an offset or a 'Z' of its own
        moment = datetime.fromisoformat(stored)
    if moment.tzinfo is None:  # a bare date ignores the appended offset
        return moment.replace(tzinfo=UTC)
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def connection_pragmas(synchronous: str = "NORMAL") -> tuple[str, ...]:
    """The PRAGMAs every connection gets, in the order they must run."""
    return (
        # WAL is persistent; asking again on an existing WAL file is a no-op.
        "PRAGMA journal_mode = WAL",
        # Durable across application crashes; a power loss may drop the
        # last commits (FULL keeps them, at about a third of the speed).
        f"PRAGMA synchronous = {synchronous}",
        "PRAGMA foreign_keys = ON",
        # One writer at a time across processes: wait, don't fail.
        f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
        # Trim the -wal file back after a checkpoint instead of keeping its
        # high-water mark (Rails 8's value).
        "PRAGMA journal_size_limit = 67108864",
        "PRAGMA mmap_size = 134217728",
        # Pages per connection; Pony keeps one connection per thread.
        "PRAGMA cache_size = 2000",
        "PRAGMA temp_store = MEMORY",
    )


def apply_pragmas(con: sqlite3.Connection, synchronous: str = "NORMAL") -> None:
    """Run the connection PRAGMAs on a DB-API connection."""
    cur = con.cursor()
    for statement in connection_pragmas(synchronous):
        cur.execute(statement)
    cur.close()


def install_pragmas(orm_db: Any, synchronous: str = "NORMAL") -> None:
    """Register the PRAGMAs on a Pony Database; call before bind()."""

    # Keyword form: the positional one registers the hook for every provider.
    @orm_db.on_connect(provider="sqlite")
    def _pragmas(_db: Any, connection: sqlite3.Connection) -> None:
        apply_pragmas(connection, synchronous)
        # Pony decodes every TEXT value through a Python function (to replace
        # invalid UTF-8); plain str takes sqlite3's C path, about 1 us less
        # per value. Everything this service stores was bound as a Python
        # str, so it is valid UTF-8.
        connection.text_factory = str


def connect(path: Path, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Open a plain connection in autocommit mode, PRAGMAs applied."""
    con = sqlite3.connect(
        path,
        isolation_level=None,
        timeout=BUSY_TIMEOUT_MS / 1000,
        check_same_thread=False,
    )
    apply_pragmas(con, synchronous)
    return con


def read_pragmas(con: Any) -> dict[str, Any]:
    """Read back the PRAGMAs that matter, for tests and diagnostics."""
    names = (
        "journal_mode",
        "synchronous",
        "foreign_keys",
        "busy_timeout",
        "journal_size_limit",
        "mmap_size",
        "cache_size",
        "temp_store",
    )
    return {name: con.execute(f"PRAGMA {name}").fetchone()[0] for name in names}


@contextlib.contextmanager
def migration_lock(path: Path, timeout: float = 120.0) -> Iterator[None]:
    """Hold an exclusive OS lock beside the database file for a migration run.

    flock() belongs to the open file description, so the kernel drops it when
    the holder dies: a crashed migrator can never leave a stale lock behind.
    """
    lock_path = path.with_name(path.name + ".migrate.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as ex:
                if ex.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"another process held {lock_path} for over {timeout:.0f} s"
                    ) from ex
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        yield
    finally:
        os.close(fd)  # releases the lock


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements, trigger bodies kept whole.

    sqlite3.complete_statement() knows comments, quotes and BEGIN...END, so
    pieces are joined at each ';' until SQLite says the statement is complete.
    Comment-only remainders are dropped.
    """
    statements: list[str] = []
    buffer = ""
    for piece in sql.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if strip_comments(buffer).strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    if strip_comments(buffer).strip(" \t\r\n;"):
        # complete_statement() never accepted it: unterminated quote or
        # trigger; hand it to SQLite so the error names the real problem.
        statements.append(buffer.rstrip(";").strip())
    return statements


_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def strip_comments(sql: str) -> str:
    """Remove SQL comments (good enough for classifying a statement)."""
    return _COMMENTS.sub(" ", sql)


# Statements a migration file must not contain: each would break the
# runner's transaction or cannot run inside one.
_FORBIDDEN = re.compile(
    r"^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE|VACUUM|"
    r"PRAGMA\s+(\w+\.)?(foreign_keys|journal_mode|legacy_alter_table)\b)",
    re.IGNORECASE,
)


def forbidden_statement(statement: str) -> str | None:
    """Name the transaction-breaking keyword a statement starts with."""
    match = _FORBIDDEN.match(strip_comments(statement))
    return " ".join(match.group(0).split()).upper() if match else None


@contextlib.contextmanager
def foreign_keys_disabled(con: sqlite3.Connection) -> Iterator[None]:
    """Switch foreign keys off around a table rebuild and restore them.

    The PRAGMA is a no-op inside a transaction, so this must wrap BEGIN.
    """
    previous = con.execute("PRAGMA foreign_keys").fetchone()[0]
    con.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        con.execute(f"PRAGMA foreign_keys = {'ON' if previous else 'OFF'}")


def foreign_key_violations(con: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Rows of PRAGMA foreign_key_check: (table, rowid, parent, fk index)."""
    return [tuple(row) for row in con.execute("PRAGMA foreign_key_check")]


def user_tables(con: sqlite3.Connection) -> list[str]:
    """Names of the tables SQLite did not create for itself."""
    return [
        row[0]
        for row in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]


def virtual_tables(con: sqlite3.Connection) -> set[str]:
    """Lower-cased names of virtual tables (FTS5 ...) and their shadow tables.

    No entity can declare these (Pony has no virtual tables), so the schema
    check and makemigration leave them out: otherwise the generator would
    plan a DROP TABLE for a hand-written FTS index. PRAGMA table_list (SQLite
    3.37+) says which tables are 'virtual' or 'shadow'; on an older SQLite
    the shadow tables are taken to be those named after a virtual table plus
    an underscore suffix, which is how FTS5, FTS3 and R*Tree name them.
    """
    try:
        rows = con.execute("PRAGMA table_list").fetchall()
    except sqlite3.DatabaseError:
        rows = []
    if rows:
        return {
            str(r[1]).lower()
            for r in rows
            if r[0] == "main" and r[2] in ("virtual", "shadow")
        }
    names = [
        str(r[0]).lower()
        for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND sql LIKE 'CREATE VIRTUAL TABLE%'"
        )
    ]
    found = set(names)
    for table in user_tables(con):
        if any(table.lower().startswith(v + "_") for v in names):
            found.add(table.lower())
    return found


@dataclass(frozen=True)
class Column:
    """A column as PRAGMA table_xinfo reports it."""

    name: str
    type: str
    notnull: bool
    default: str | None
    pk: int  # position in the primary key, 0 when not part of it


@dataclass(frozen=True)
class ForeignKey:
    """One column of a foreign key as PRAGMA foreign_key_list reports it."""

    column: str
    table: str
    to: str
    on_delete: str


@dataclass(frozen=True)
class Index:
    """An index as PRAGMA index_list/index_info report it."""

    name: str
    columns: tuple[str, ...]
    unique: bool
    origin: str  # 'c' CREATE INDEX, 'u' UNIQUE constraint, 'pk' primary key


@dataclass(frozen=True)
class Table:
    """What SQLite knows about one table."""

    name: str
    columns: tuple[Column, ...]
    indexes: tuple[Index, ...]
    foreign_keys: tuple[ForeignKey, ...]

    def column(self, name: str) -> Column | None:
        """The column called name, compared case-insensitively."""
        for column in self.columns:
            if column.name.lower() == name.lower():
                return column
        return None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_schema(con: sqlite3.Connection) -> dict[str, Table]:
    """Introspect every user table but virtual ones, keyed by lower-cased name."""
    schema: dict[str, Table] = {}
    virtual = virtual_tables(con)
    for name in user_tables(con):
        if name.lower() in virtual:
            continue
        quoted = _quote(name)
        columns = tuple(
            Column(r[1], " ".join(str(r[2]).upper().split()), bool(r[3]), r[4], r[5])
            for r in con.execute(f"PRAGMA table_xinfo({quoted})")
            if r[6] == 0  # hidden == 0: ordinary columns only
        )
        indexes = []
        for _seq, index_name, unique, origin, _partial in con.execute(
            f"PRAGMA index_list({quoted})"
        ):
            cols = tuple(
                r[2] for r in con.execute(f"PRAGMA index_info({_quote(index_name)})")
            )
            indexes.append(Index(index_name, cols, bool(unique), origin))
        foreign_keys = tuple(
            ForeignKey(r[3], r[2], r[4], r[6].upper())
            for r in con.execute(f"PRAGMA foreign_key_list({quoted})")
        )
        schema[name.lower()] = Table(
            name, columns, tuple(sorted(indexes, key=lambda i: i.name)), foreign_keys
        )
    return schema


def schema_of_script(script: str) -> dict[str, Table]:
    """Introspect the schema a DDL script creates, on a scratch database."""
    con = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for statement in split_statements(script):
            con.execute(statement)
        return read_schema(con)
    finally:
        con.close()


def startup_maintenance(con: sqlite3.Connection) -> None:
    """Let SQLite gather the statistics a long-lived connection needs."""
    con.execute("PRAGMA optimize = 0x10002")


def shutdown_maintenance(path: Path) -> tuple[int, int, int]:
    """Optimize and checkpoint the WAL into the main file; returns the checkpoint row."""
    con = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        con.execute("PRAGMA optimize")
        row = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return (int(row[0]), int(row[1]), int(row[2]))
    finally:
        con.close()


class BoundedLock:
    """A lock whose blocking acquire() gives up after timeout seconds.

    Pony serialises writers in one process with a plain threading.Lock that
    it acquires with no timeout, so one slow writer would stall every other
    writer forever. This stands in for that lock: past the timeout it raises
    SQLite's own "database is locked" error, which callers already handle.
    """

    def __init__(
        self, timeout: float, observe: Callable[[float, bool], None] | None = None
    ):
        self._lock = threading.Lock()
        self._timeout = timeout
        self.observe = observe

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock, waiting at most the configured timeout."""
        if not blocking:
            return self._lock.acquire(False)
        if self._lock.acquire(False):  # uncontended: no clock reads
            if self.observe is not None:
                self.observe(0.0, True)
            return True
        started = time.perf_counter()
        got = self._lock.acquire(timeout=self._timeout if timeout < 0 else timeout)
        if self.observe is not None:
            self.observe(time.perf_counter() - started, got)
        if not got:
            raise sqlite3.OperationalError(
                f"database is locked: waited {self._timeout:g} s for this process's write lock"
            )
        return True

    def release(self) -> None:
        """Release the lock."""
        self._lock.release()


def bound_write_lock(
    orm_db: Any, timeout: float, observe: Callable[[float, bool], None] | None = None
) -> BoundedLock:
    """Replace Pony's unbounded in-process write lock with a BoundedLock.

    Pony's acquire_lock() holds a second "pre" lock while it waits, which
    would queue later writers without a bound; the replacement waits on the
    one bounded lock only. Relies on SQLiteProvider.acquire_lock/release_lock
    and transaction_lock (pony 0.7.20, pinned); a test fails loudly if an
    upgrade changes them.
    """
    provider = orm_db.provider
    for name in ("acquire_lock", "release_lock", "transaction_lock"):
        if not hasattr(provider, name):
            raise RuntimeError(
                f"this Pony version's SQLite provider has no {name} to bound"
            )
    lock = BoundedLock(timeout, observe)
    provider.transaction_lock = lock
    provider.acquire_lock = lock.acquire  # release_lock() releases transaction_lock
    return lock


def backup(source: Path, target: Path) -> str:
    """Copy a live database with SQLite's online backup API; returns integrity_check.

    The copy is written beside target and renamed into place only once it
    passed integrity_check, so a failed backup never leaves a partial file.
    """
    try:
        return _backup(source, target)
    except (sqlite3.Error, OSError) as ex:
        raise DatabaseError(str(ex)) from ex


def _backup(source: Path, target: Path) -> str:
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(
        f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000
    )
    try:
        dst = sqlite3.connect(partial)
        try:
            # pages=-1: one step, so concurrent writers cannot force a restart.
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode = DELETE")  # a self-contained single file
            result = str(dst.execute("PRAGMA integrity_check").fetchone()[0])
        finally:
            dst.close()
    finally:
        src.close()
    if result != "ok":
        partial.unlink(missing_ok=True)
        return result
    partial.replace(target)
    return result


@dataclass(frozen=True)
class SchemaObject:
    """One CREATE statement SQLite keeps in sqlite_master."""

    type: str  # 'table', 'index', 'trigger' or 'view'
    name: str
    table: str  # the table an index or trigger belongs to
    sql: str


def schema_objects(con: sqlite3.Connection) -> list[SchemaObject]:
    """User tables, indexes, triggers and views in creation order.

    Automatic indexes (UNIQUE and PRIMARY KEY constraints) have no SQL of
    their own and are left out; read_schema() reports them. So are virtual
    tables and their shadow tables (see virtual_tables()); triggers that
    keep them in step stay, so a rebuild recreates them.
    """
    virtual = virtual_tables(con)
    return [
        SchemaObject(row[0], row[1], row[2], row[3])
        for row in con.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        )
        if not (row[0] == "table" and str(row[1]).lower() in virtual)
    ]


def quote_identifier(name: str) -> str:
    """Quote a table, column or index name for SQL text."""
    return _quote(name)


# ALTER TABLE ADD COLUMN refuses these defaults ("non-constant default").
_NON_CONSTANT_DEFAULT = re.compile(
    r"^\s*(\(|CURRENT_TIME\b|CURRENT_DATE\b|CURRENT_TIMESTAMP\b)", re.I
)


def is_constant_default(default: str | None) -> bool:
    """Whether ALTER TABLE ADD COLUMN accepts this DEFAULT expression."""
    return default is None or not _NON_CONSTANT_DEFAULT.match(default)


def has_autoincrement(create_table_sql: str) -> bool:
    """Whether a CREATE TABLE statement declares an AUTOINCREMENT key."""
    return (
        re.search(r"\bAUTOINCREMENT\b", strip_comments(create_table_sql), re.I)
        is not None
    )
