"""The supervisor: open the database and bind once, fork workers, keep them up.

With SERVICE_WORKERS above 1, `serve` runs this instead of one waitress
server. Before the first fork it migrates and checks the database once
(and, on PostgreSQL, that the server has a connection for every thread of
every worker), creates the write lock every worker's SQLite writers share
(db.engines.base.process_lock), binds the listening sockets once, and
makes the board /readyz reads. Then it forks the workers (worker.py),
which inherit all of it, and watches them:

- a worker that dies (kill -9, the OOM killer, a crash) is restarted
  after RESTART_DELAY, doubled for each one in a row that died within
  QUICK_EXIT seconds of starting; after CRASH_LOOP such deaths in a row
  the supervisor stops restarting it: one CRITICAL line, every other
  worker drained, exit 1;
- SIGTERM, SIGINT and SIGHUP stop accepting, pass SIGTERM to every
  worker, each of which drains its requests in flight (service.server),
  then the supervisor checkpoints the database once and exits 0.

The supervisor runs no thread and holds no database connection when it
forks, so a worker starts from a clean copy of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from service.cli.common import EXIT_FAILED, EXIT_OK
from service.workers import worker
from service.workers.board import DOWN, READY, STARTING

log = logging.getLogger("service")

RESTART_DELAY = 0.1
MAX_RESTART_DELAY = 5.0
QUICK_EXIT = 10.0
CRASH_LOOP = 5
# Beyond SERVICE_SHUTDOWN_TIMEOUT: a worker's last answers, its token-use
# flush and its exit. Then SIGKILL.
STOP_GRACE = 5.0
TICK = 0.5
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def metrics_folder() -> Path:
    """A fresh folder for the workers' metric files, named in the environment.

    prometheus_client picks its multiprocess mode when it is first
    imported, so this must run before anything imports it.
    """
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the workers' folder")
    folder = Path(tempfile.mkdtemp(prefix="service-metrics-"))
    os.environ[METRICS_DIR] = str(folder)
    return folder


def describe_exit(code: int) -> str:
    """An exit code from os.waitstatus_to_exitcode, in words."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"exit code {code}"


@dataclass
class Slot:
    """One worker's place: its process now and its recent deaths."""

    index: int
    pid: int | None = None
    started: float = 0.0
    quick_exits: int = 0
    restart_at: float | None = None

    @property
    def number(self) -> int:
        """The worker's number in logs, from 1."""
        return self.index + 1


class Supervisor:
    """Forks the workers, restarts the ones that die, drains them all on stop."""

    def __init__(self, setup: worker.WorkerSetup) -> None:
        self._setup = setup
        self._board = setup.board
        self._slots = [Slot(i) for i in range(setup.board.size)]
        self._by_pid: dict[int, Slot] = {}
        self._stop_reason: str | None = None
        self._failed: str | None = None
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)

    def stop(self, reason: str = "stop requested") -> None:
        """Ask run() to drain every worker and return; safe from a signal handler."""
        if self._stop_reason is None:
            self._stop_reason = reason
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"s")

    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        """Start the workers and keep them up until stop(); the exit code."""
        # Every signal (a child's exit included) wakes the loop's select().
        signal.signal(signal.SIGCHLD, _ignore)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        announced = False
        try:
            for slot in self._slots:
                self._spawn(slot)
            while self._stop_reason is None:
                self._wait(self._timeout(announced))
                self._reap()
                self._restart_due()
                if not announced and self._board.readiness().complete:
                    announced = True
                    if on_ready is not None:
                        on_ready()
            return self._drain()
        finally:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _timeout(self, announced: bool) -> float:
        timeout = TICK if announced else 0.05
        due = [s.restart_at for s in self._slots if s.restart_at is not None]
        if due:
            timeout = min(timeout, max(0.0, min(due) - time.monotonic()))
        return timeout

    def _wait(self, timeout: float) -> None:
        with contextlib.suppress(InterruptedError):
            select.select([self._wake_r], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 512):
                pass

    def _spawn(self, slot: Slot) -> None:
        slot.restart_at = None
        self._board.mark(slot.index, STARTING)
        # Blocked across the fork: a stop signal then reaches the worker's
        # own handler (installed before it unblocks them), never ours.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        me = os.getpid()
        try:
            pid = os.fork()
            if pid == 0:
                try:
                    os.close(self._wake_r)
                    os.close(self._wake_w)
                    worker.run(self._setup, slot.index, me)
                finally:
                    os._exit(EXIT_FAILED)  # worker.run never returns; never unwind here
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        slot.pid, slot.started = pid, time.monotonic()
        self._by_pid[pid] = slot
        log.info(
            "worker %d started",
            slot.number,
            extra={
                "event.action": "worker_started",
                "worker.id": slot.number,
                "worker.pid": pid,
            },
        )

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self._by_pid.pop(pid, None)
            if slot is not None:
                self._exited(slot, os.waitstatus_to_exitcode(status))

    def _exited(self, slot: Slot, code: int) -> None:
        from service.metrics import forget_process

        was_ready = self._board.state(slot.index) == READY
        self._board.mark(slot.index, DOWN)
        pid, slot.pid = slot.pid, None
        if pid is not None:
            forget_process(pid)
        fields = {
            "event.action": "worker_exited",
            "worker.id": slot.number,
            "worker.pid": pid,
            "process.exit_code": code,
        }
        if self._stop_reason is not None:
            if code != EXIT_OK:
                log.warning(
                    "worker %d stopped with %s",
                    slot.number,
                    describe_exit(code),
                    extra=fields,
                )
            return
        lived = time.monotonic() - slot.started
        if was_ready and lived >= QUICK_EXIT:
            slot.quick_exits = 0
        else:
            slot.quick_exits += 1
        if slot.quick_exits >= CRASH_LOOP:
            self._failed = (
                f"worker {slot.number} exited within {QUICK_EXIT:g} s of starting "
                f"{slot.quick_exits} times in a row (last: {describe_exit(code)}); "
                "not restarting it"
            )
            self.stop("a worker keeps dying")
            return
        delay = min(RESTART_DELAY * 2**slot.quick_exits, MAX_RESTART_DELAY)
        slot.restart_at = time.monotonic() + delay
        log.warning(
            "worker %d (pid %d) exited with %s; restarting it in %.1f s",
            slot.number,
            pid,
            describe_exit(code),
            delay,
            extra=fields,
        )

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            if slot.restart_at is not None and slot.restart_at <= now:
                self._spawn(slot)

    def _drain(self) -> int:
        if self._failed is not None:
            log.critical("%s", self._failed, extra={"event.action": "crash_loop"})
        else:
            log.info("%s; draining %d worker(s)", self._stop_reason, len(self._by_pid))
        for sock in self._setup.sockets:
            sock.close()  # the workers keep their own until they drained
        for pid in list(self._by_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self._setup.settings.shutdown_timeout + STOP_GRACE
        while self._by_pid and time.monotonic() < deadline:
            self._wait(0.1)
            self._reap()
        for pid in list(self._by_pid):
            log.warning("worker (pid %d) still running; killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        while self._by_pid:
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            slot = self._by_pid.pop(pid, None)
            if slot is not None:
                self._board.mark(slot.index, DOWN)
        return EXIT_FAILED if self._failed is not None else EXIT_OK


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    """A Python handler, so that SIGCHLD reaches the wake-up descriptor."""


def remove_folder(folder: Path) -> None:
    """Remove the workers' metrics folder (nothing reads it once they are gone)."""
    shutil.rmtree(folder, ignore_errors=True)
