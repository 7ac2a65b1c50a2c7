"""What every engine's backup shares: its target, its temporary copy, the move.

A backup writes a regular file, new or (with --force) replacing one: a
device, FIFO, socket or directory at the target is refused, --force or
not, since moving a copy over /dev/sda or a pipe someone reads is never
what was meant.

The copy is made in a temporary file beside the target, `.NAME.XXXXXXXX.partial`,
which the writing process holds an flock(2) on until it is done; the kernel
drops that lock when the process dies, however it dies. So a backup killed
mid-copy (kill -9, the OOM killer, a lost machine) leaves its partial file
unlocked, and the next backup into that folder removes every partial file
nobody holds: a copy in progress is never touched.

A backup is written to a temporary file of its own beside the target
(two backups never share one), verified, and only then moved into place:
replaced with --force, otherwise linked, so that of two backups racing
to one new name exactly one wins. A filesystem without hard links (EPERM,
EOPNOTSUPP; EXDEV across a bind mount) gets a check and a rename.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from db.errors import DatabaseError

PARTIAL_SUFFIX = ".partial"
# SQLite's journals of a temporary copy, removed with it.
COMPANIONS = ("-journal", "-wal", "-shm")
# mkstemp's names: the prefix, eight random characters, the suffix.
_PARTIAL = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.partial(-journal|-wal|-shm)?$")
# What a partial file of ours starts with: SQLite's header, pg_dump's, or
# zeros (SQLite may spill later pages of the copy before the first).
_HEADERS = (b"SQLite format 3\x00", b"PGDMP", bytes(16))
# An empty unlocked partial this young may be one a backup has just
# created and not yet locked: left for a later backup to remove.
_EMPTY_GRACE_SECONDS = 60.0

_KINDS = (
    (stat.S_ISDIR, "a directory; name a file inside it"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def not_a_regular_file(target: Path) -> str | None:
    """What target (links followed) is when it exists and is no regular file."""
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return None  # absent (or a dangling link): a new file is written
    for test, what in _KINDS:
        if test(mode):
            return what
    return None if stat.S_ISREG(mode) else "not a regular file"


def refuse_special(target: Path, error: type[DatabaseError]) -> None:
    """Raise error naming target when it exists and is not a regular file."""
    what = not_a_regular_file(target)
    if what is not None:
        detail = "" if ";" in what else "; a backup writes a regular file"
        raise error(f"backup target {target} is {what}{detail}")


@contextlib.contextmanager
def partial_copy(final: Path) -> Iterator[Path]:
    """A new temporary file beside final, locked while the block runs; removed after.

    Stale partial files of killed backups in the folder are removed first.
    OSError when the folder cannot be written.
    """
    remove_stale(final.parent)
    fd, name = tempfile.mkstemp(
        prefix=f".{final.name}.", suffix=PARTIAL_SUFFIX, dir=final.parent
    )
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a fresh file: never contended
        yield Path(name)
    finally:
        for leftover in (name, *(name + s for s in COMPANIONS)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
        os.close(fd)  # releases the lock


def remove_stale(folder: Path) -> list[str]:
    """Remove the partial files in folder that no live backup holds; their names."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    removed = []
    for name in sorted(names):
        found = _PARTIAL.match(name)
        if found is None:
            continue
        base = name[: len(name) - len(found.group(1) or "")]
        if found.group(1):
            # A journal whose copy is gone; one beside a copy goes with it.
            if base not in names and _unlink(folder / name):
                removed.append(name)
            continue
        if _stale(folder / name):
            for leftover in (name, *(name + s for s in COMPANIONS)):
                if _unlink(folder / leftover):
                    removed.append(leftover)
    return removed


def _stale(path: Path) -> bool:
    """True when path is our partial copy and no process holds it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False  # a link, a vanished file, one we may not read: not ours
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as ex:
            if ex.errno in (errno.EAGAIN, errno.EACCES):
                return False  # a backup is writing it
            raise
        head = os.read(fd, 16)
        if not head:
            return time.time() - status.st_mtime > _EMPTY_GRACE_SECONDS
        return head.startswith(_HEADERS)
    finally:
        os.close(fd)


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except OSError:
        return False
    return True


def move_into_place(
    partial: Path,
    final: Path,
    *,
    force: bool,
    refused: type[DatabaseError],
) -> None:
    """Move the verified copy at partial to final; refused(...) if final appeared."""
    if force:
        os.replace(partial, final)
        return
    appeared = f"backup target {final} appeared meanwhile; pass --force to replace it"
    try:
        # link() never replaces: of two backups racing to one new name, one wins.
        os.link(partial, final)
    except FileExistsError as ex:
        raise refused(appeared) from ex
    except OSError as ex:
        if ex.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # A filesystem without hard links: check, then rename (a small race).
        if final.exists():
            raise refused(appeared) from ex
        os.replace(partial, final)
