"""Online backups of a live SQLite file, and the targets they must refuse.

A backup written onto the database's own -wal (or any file that is, or
resolves to, one of the live files) destroys committed writes and still
reports "integrity ok", so every such target is refused before anything
is opened, as is one that is not a regular file (db/engines/base/backup.py). The
copy is written to a temporary file of its own beside the target (two
backups never share one) and moved into place only once it passed
integrity_check; every failure removes it, and one a killed backup left
is removed by the next.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from db.engines.base.backup import move_into_place, partial_copy, refuse_special
from db.engines.sqlite.connection import COMPANION_SUFFIXES, connect_read_only
from db.errors import DatabaseError


class BackupTargetError(DatabaseError):
    """The target is, belongs to or resolves to the live database, or exists."""


def live_files(database: Path) -> dict[Path, str]:
    """The database and every file beside it that belongs to it, each described.

    Both as configured and with symlinks resolved: SQLite names its
    companions after the path it was given.
    """
    files: dict[Path, str] = {}
    for base in (database.absolute(), database.resolve()):
        files[base] = "the live database"
        for suffix in COMPANION_SUFFIXES:
            files[Path(str(base) + suffix)] = f"the live database's {suffix} file"
    return files


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts, case-folding
    except OSError:
        return False  # one of them does not exist


def check_target(database: Path, target: Path, *, force: bool = False) -> Path:
    """Where a backup of database to target must be written; refuses bad targets.

    Returns target with symlinks resolved (a link to a backup updates the
    file it points at). Raises BackupTargetError naming the reason.
    """
    target = target.expanduser().absolute()
    resolved = target.resolve()
    for live, what in live_files(database).items():
        if resolved == live.resolve() or _same_file(target, live):
            raise BackupTargetError(
                f"backup target {target} is {what}; choose another path"
            )
    refuse_special(target, BackupTargetError)
    if not resolved.parent.is_dir():
        raise BackupTargetError(f"backup folder {resolved.parent} does not exist")
    if resolved.exists() and not force:
        raise BackupTargetError(
            f"backup target {target} exists; pass --force to replace it"
        )
    return resolved


def backup(source: Path, target: Path, *, force: bool = False) -> str:
    """Copy a live database with SQLite's online backup API; returns integrity_check.

    Raises BackupTargetError for a target check_target() refuses (or one
    that appeared meanwhile, without force), DatabaseError for any other
    failure; neither leaves a file behind.
    """
    final = check_target(source, target, force=force)
    with contextlib.ExitStack() as stack:
        try:
            partial = stack.enter_context(partial_copy(final))
        except OSError as ex:
            raise DatabaseError(f"cannot write in {final.parent}: {ex}") from ex
        try:
            result = _copy(source, partial)
            if result == "ok":
                move_into_place(partial, final, force=force, refused=BackupTargetError)
            return result
        except (sqlite3.Error, OSError) as ex:
            raise DatabaseError(str(ex)) from ex


def _copy(source: Path, partial: Path) -> str:
    src = connect_read_only(source)
    try:
        dst = sqlite3.connect(partial)
        try:
            # pages=-1: one step, so concurrent writers cannot force a restart.
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode = DELETE")  # a self-contained single file
            return str(dst.execute("PRAGMA integrity_check").fetchone()[0])
        finally:
            dst.close()
    finally:
        src.close()
