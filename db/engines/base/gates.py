"""Write gates: how writers reach the database, boundedly.

Every writer of the service passes its engine's gate before its write
transaction begins (db.session.begin_write, writing). SQLite serialises
a process's writers with a lock Pony waits on without a timeout, so its
gate lets one writer in at a time and gives up after the configured
wait: SerialGate within one process, SharedGate across the worker
processes of one supervisor (process_lock.py says why SQLite's own busy
handler is not enough there). PostgreSQL orders concurrent writers
itself (row locks, bounded by lock_timeout), so its gate admits everyone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from db.engines.base.process_lock import ProcessSharedLock
from db.errors import BusyError

LockObserver = Callable[[float, bool], None]


class WriteGate(Protocol):
    """Admits writers; acquire() raises BusyError past its timeout."""

    observe: LockObserver | None

    def acquire(self) -> None:
        """Wait for the gate (bounded); BusyError when the wait gives up."""

    def release(self) -> None:
        """Let the next writer in."""


class SerialGate:
    """One writer at a time in this process, waiting at most timeout seconds."""

    def __init__(self, timeout: float, observe: LockObserver | None = None) -> None:
        self._lock = threading.Lock()
        self._timeout = timeout
        self.observe = observe

    def acquire(self) -> None:
        """Take the gate, or raise BusyError after the timeout."""
        if self._lock.acquire(False):  # uncontended: no clock reads
            if self.observe is not None:
                self.observe(0.0, True)
            return
        started = time.perf_counter()
        got = self._lock.acquire(timeout=self._timeout)
        if self.observe is not None:
            self.observe(time.perf_counter() - started, got)
        if not got:
            raise BusyError(
                f"another request held this process's write lock for over "
                f"{self._timeout:g} s"
            )

    def release(self) -> None:
        """Release the gate."""
        self._lock.release()


class SharedGate:
    """One writer at a time in every worker process, waiting at most timeout.

    Built before the workers are forked, so that they all share its lock.
    """

    def __init__(
        self,
        timeout: float,
        lock: ProcessSharedLock | None = None,
        observe: LockObserver | None = None,
    ) -> None:
        self._lock = lock or ProcessSharedLock()
        self._timeout = timeout
        self.observe = observe

    def acquire(self) -> None:
        """Take the gate, or raise BusyError after the timeout."""
        lock = self._lock
        if self.observe is None:
            if not lock.acquire(self._timeout):
                raise BusyError(self._refusal())
            return
        started = time.perf_counter()
        got = lock.acquire(self._timeout)
        self.observe(time.perf_counter() - started, got)
        if not got:
            raise BusyError(self._refusal())

    def _refusal(self) -> str:
        return (
            f"another request held the workers' write lock for over {self._timeout:g} s"
        )

    def release(self) -> None:
        """Release the gate (from the thread that acquired it)."""
        self._lock.release()


class OpenGate:
    """Admits every writer at once (the engine orders them: PostgreSQL)."""

    observe: LockObserver | None = None

    def acquire(self) -> None:
        """Nothing to wait for."""

    def release(self) -> None:
        """Nothing to release."""
