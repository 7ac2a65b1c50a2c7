"""The SQLite migration lock: an flock on a file beside the database.

The runner serialises migration runs with it (and BEGIN IMMEDIATE per
file); writers of one process pass db/engines/base/gates.py's SerialGate.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from db.engines.sqlite.connection import MIGRATION_LOCK_SUFFIX


@contextlib.contextmanager
def migration_lock(path: Path, timeout: float = 120.0) -> Iterator[None]:
    """Hold an exclusive OS lock beside the database file for a migration run.

    flock() belongs to the open file description, so the kernel drops it when
    the holder dies: a crashed migrator can never leave a stale lock behind.
    """
    lock_path = path.with_name(path.name + MIGRATION_LOCK_SUFFIX)
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
