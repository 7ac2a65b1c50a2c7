"""One worker process: the app and a waitress server on the supervisor's sockets.

Runs in the child right after the supervisor forked it, and never returns
into the supervisor's code: run() ends the process with os._exit. The
worker serves exactly as a single-process `serve` does (its own waitress
loop, threads and graceful drain in service.server), on the listening
sockets and the database the supervisor opened before forking; it opens
its own database connections on first use.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass

from db.database import Database
from service import logs
from service.cli.common import EXIT_FAILED, EXIT_OK, EXIT_SIGNAL_BASE
from service.config import Settings
from service.workers.board import READY, Board

log = logging.getLogger("service")


@dataclass(frozen=True)
class WorkerSetup:
    """What every worker gets from the supervisor, inherited through fork."""

    settings: Settings
    database: Database
    sockets: list[socket.socket]
    board: Board
    connection_limit: int
    event_streams: int  # what the open-file limit leaves for GET /v1/events


_PR_SET_PDEATHSIG = 1


def follow_supervisor(supervisor: int) -> None:
    """SIGTERM this worker when the supervisor dies, however it dies.

    A supervisor killed with SIGKILL (or by the OOM killer) cannot drain
    its workers: without this they would serve on, orphaned, holding the
    port and the service's stderr. Linux's PR_SET_PDEATHSIG sends the
    signal when the parent ends; if it ended before this ran, the worker
    stops at once. SIGTERM then drains the worker as usual.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != supervisor:
        os.kill(os.getpid(), signal.SIGTERM)


def run(setup: WorkerSetup, slot: int, supervisor: int) -> None:
    """Serve as worker slot until a stop signal; exit the process (never returns).

    supervisor: the pid of the process that forked this one.
    """
    code = EXIT_FAILED
    logs.set_worker(slot + 1)
    try:
        follow_supervisor(supervisor)
        code = _serve(setup, slot)
    except BaseException:
        log.exception("worker %d failed", slot + 1, extra={"event.action": "failed"})
    finally:
        # Whatever happened, never unwind into the supervisor's loop: write
        # the logs and leave (no atexit handler the supervisor registered).
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


def _serve(setup: WorkerSetup, slot: int) -> int:
    from service.server import STOP_SIGNALS, StartupInterruptedError, StopSignals
    from service.serving import build_server

    # The supervisor's wake-up descriptor and child handler are its own.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signals = StopSignals()
    signals.install()
    settings, database = setup.settings, setup.database
    try:
        # Blocked by the supervisor across the fork; pending ones arrive now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        fault = database.fault()
        if fault is not None:
            # ERROR: the supervisor's crash-loop line is the one CRITICAL.
            log.error(
                "worker %d cannot start: %s",
                slot + 1,
                fault,
                extra={"event.action": "failed"},
            )
            return EXIT_FAILED
        server, _ = build_server(
            settings,
            database,
            streams=setup.event_streams,
            connection_limit=setup.connection_limit,
            sockets=setup.sockets,
            workers=setup.board,
        )
        signals.serving(server.stop)
        setup.board.mark(slot, READY)
        server.run()
    except StartupInterruptedError as ex:
        # The supervisor is stopping every worker; this one had not started.
        return EXIT_SIGNAL_BASE + ex.signum
    finally:
        try:
            # Token uses written; the checkpoint is the supervisor's, once.
            database.close(maintenance=False)
        finally:
            signals.finished()
    return EXIT_OK
