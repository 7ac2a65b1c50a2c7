"""What went wrong at start, as one line naming the cause and the setting."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from db.engines.sqlite import errors as sqlite
from db.errors import MigrationError, SchemaMismatchError
from service.config import POSTGRES_EXTRA, Settings

SQLITE_HEADER = b"SQLite format 3\x00"
_READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


class DatabaseFileError(Exception):
    """The database path cannot hold a database; str() says why."""


def check_database_path(path: Path) -> None:
    """Refuse a path that is a directory or a file other than an SQLite database.

    Run before a command opens the file, so these never reach SQLite, whose
    own words for them are "disk I/O error" and "file is not a database".
    """
    if path.is_dir():
        raise DatabaseFileError(
            f"{path} is a directory; SERVICE_DATABASE_PATH must name a database file"
        )
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return  # created on first use
    except NotADirectoryError as ex:
        raise DatabaseFileError(
            f"{path}: a parent of it is a file, not a directory"
        ) from ex
    except OSError as ex:
        raise DatabaseFileError(f"cannot read {path}: {ex.strerror}") from ex
    if header and header != SQLITE_HEADER:
        raise DatabaseFileError(
            f"{path} is not an SQLite database (its first bytes are not SQLite's "
            "header); check SERVICE_DATABASE_PATH"
        )


def check_writable(path: Path) -> None:
    """Refuse a database the service could read but never write, before opening it.

    SQLite opens a file it may not write read-only without a word: the
    service would start "ready" and answer every write with a 503 that no
    retry fixes. The folder first (a read-only mount explains everything
    in it), then the file and the -wal and -shm files beside it.
    """
    folder = path.parent
    if folder.is_dir() and not _writable(folder):
        raise DatabaseFileError(_read_only_folder(path))
    for candidate in (path, *(Path(f"{path}{s}") for s in ("-wal", "-shm"))):
        if candidate.exists() and not _writable(candidate):
            raise DatabaseFileError(
                f"{candidate} is read-only: the service needs to write it "
                "(check its mode and owner, or the mount)"
            )


def _read_only_folder(path: Path) -> str:
    return (
        f"{path.parent} is read-only: the service writes {path.name} and its "
        "-wal, -shm and .migrate.lock files beside it (even to read a "
        "WAL database, SQLite needs its -shm file)"
    )


def _writable(path: Path) -> bool:
    # access(2) answers EROFS for a read-only mount, even for root.
    return os.access(path, os.W_OK)


def describe(path: Path, ex: BaseException) -> str:
    """One line naming why the database at path failed, from what was raised."""
    text = str(ex)
    folder = path.parent
    if "malformed" in text or "corrupt" in text:
        return (
            f"{path} is corrupt (SQLite: {text}); restore it from a backup "
            "(docs/operations.md, 'Backups and restore')"
        )
    if "not a database" in text:
        return f"{path} is not an SQLite database (SQLite: {text})"
    read_only = "readonly" in text or "read-only" in text
    if isinstance(ex, OSError) and ex.errno in _READ_ONLY_ERRNOS:
        read_only = True
    if read_only or "unable to open database file" in text:
        if folder.is_dir() and not _writable(folder):
            return _read_only_folder(path)
        if path.exists() and not _writable(path):
            return f"{path} is read-only: the service needs to write it"
        if not folder.is_dir():
            return f"cannot create {path}: {folder} is not a directory"
    if isinstance(ex, OSError) and ex.strerror:
        where = f": {ex.filename}" if ex.filename else ""
        return f"{ex.strerror}{where}"
    if isinstance(ex, sqlite.ERROR):
        return f"{path}: SQLite: {text}"
    return text


def database_setting(settings: Settings) -> str:
    """The variable that names the database in use."""
    return (
        "SERVICE_DATABASE_URL"
        if settings.target.dialect == "postgres"
        else "SERVICE_DATABASE_PATH"
    )


def responsible_setting(ex: BaseException, settings: Settings) -> str | None:
    """The setting that changes the outcome of a start-up failure, if one does.

    A broken, edited or mismatched migration is fixed in its file or with a
    new migration; a held lock waits for its holder: no setting for those.
    """
    if isinstance(ex, MigrationError | SchemaMismatchError | TimeoutError):
        return "SERVICE_MIGRATIONS_PATH" if settings.migrations_path else None
    return database_setting(settings)


def naming_the_setting(text: str, ex: BaseException, settings: Settings) -> str:
    """text, plus the setting to change when it names none yet."""
    setting = responsible_setting(ex, settings)
    if setting is None or "SERVICE_" in text:
        return text
    return f"{text} (check {setting})"


def missing_driver(command: str, settings: Settings) -> str:
    """The line for a command that needs psycopg2 where it is not installed."""
    if settings.target.dialect == "postgres":
        why = "SERVICE_DATABASE_URL selects PostgreSQL"
    else:
        why = f"{command} also checks the PostgreSQL migrations"
    return f"{why}, whose driver (psycopg2) is not installed: {POSTGRES_EXTRA}"
