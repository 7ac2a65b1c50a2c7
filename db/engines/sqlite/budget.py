"""Time budgets for SQLite statements: a progress handler per connection.

attach() installs, on every connection Pony opens (connection.py), a progress
handler that interrupts the running statement once the calling thread's
deadline has passed (sqlite3.Connection.set_progress_handler: public
API). Pony keeps one connection per thread, so the deadline is the
thread's. Without a deadline the handler returns at once; it runs every
_STEPS virtual machine instructions (a few microseconds apart).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator

_STEPS = 10_000
_local = threading.local()


class Budget:
    """A thread's deadline (time.monotonic) and whether it interrupted."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.fired = False


def _progress() -> int:
    budget: Budget | None = getattr(_local, "budget", None)
    if budget is None or time.monotonic() < budget.at:
        return 0
    budget.fired = True
    return 1  # non-zero: SQLite stops the statement (SQLITE_INTERRUPT)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[Budget]:
    """Statements this thread runs within the block stop after seconds."""
    budget = Budget(time.monotonic() + seconds)
    _local.budget = budget
    try:
        yield budget
    finally:
        _local.budget = None


def attach(connection: sqlite3.Connection) -> None:
    """Install the deadline's progress handler on a new connection."""
    connection.set_progress_handler(_progress, _STEPS)
