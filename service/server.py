"""Serve the app with waitress; drain and close cleanly on SIGTERM/SIGINT/SIGHUP.

waitress installs no signal handler, and its own shutdown path stops the
event loop before finished responses are flushed (the main loop writes
them). So the loop runs here: on a signal it stops accepting, keeps
serving the connections that have a request in flight until they are
answered or shutdown_timeout passes, then stops the workers. The waitress
internals this needs live in service.waitress_adapter.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from service import waitress_adapter

log = logging.getLogger(__name__)

LOOP_TIMEOUT = 0.5
DRAIN_TICK = 0.05
# SIGHUP drains like SIGTERM: a closed terminal or `kill -HUP` must not drop
# requests in flight. There is no configuration to reload.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class ListenError(Exception):
    """The server cannot listen on host and port; errno says why (None: no address)."""

    def __init__(self, host: str, port: int, cause: Exception) -> None:
        self.host = host
        self.port = port
        self.errno = cause.errno if isinstance(cause, OSError) else None
        if isinstance(cause, OSError) and cause.strerror:
            reason = cause.strerror
        else:
            reason = "the host name does not resolve to an address"
        super().__init__(f"cannot listen on {host} port {port}: {reason}")


class Server:
    """A waitress server whose run() returns after a graceful drain."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sockets: list[socket.socket] | None = None,
        threads: int,
        shutdown_timeout: float,
        on_stop: Callable[[], None] | None = None,
        **adjustments: Any,
    ) -> None:
        """Listen on host and port, or serve sockets bound already (a worker's)."""
        self._stop = threading.Event()
        # Run first when stopping, before the drain (the event streams' end).
        self._on_stop = on_stop
        self._stop_reason = "stop requested"
        self._shutdown_timeout = shutdown_timeout
        if "channel_timeout" in adjustments:
            # waitress looks for idle channels only every cleanup_interval
            # (30 s by default): check often enough to honour the timeout.
            adjustments.setdefault(
                "cleanup_interval", max(1, int(adjustments["channel_timeout"]) // 4)
            )
        where: dict[str, Any] = (
            {"host": host, "port": port} if sockets is None else {"sockets": sockets}
        )
        try:
            self._listening = waitress_adapter.listen(
                app,
                **where,
                threads=threads,
                # Errors are problem+json from the app; never show a traceback.
                expose_tracebacks=False,
                ident="service-foundation",
                **adjustments,
            )
        except (OSError, ValueError) as ex:
            # waitress raises ValueError for a host that does not resolve.
            raise ListenError(host, port, ex) from ex

    @property
    def urls(self) -> list[str]:
        """Every address the server listens on (the host may resolve to several)."""
        return self._listening.urls

    @property
    def url(self) -> str:
        """The first address the server listens on."""
        return self.urls[0]

    def stop(self, reason: str = "stop requested") -> None:
        """Ask run() to drain and return; safe from a signal handler, repeatable."""
        if self._stop.is_set():
            return  # a second SIGTERM while draining changes nothing
        self._stop_reason = reason
        self._stop.set()
        # Wake the poll loop now; once it closed its trigger it is stopping anyway.
        with contextlib.suppress(OSError):
            self._listening.wake()

    def run(self) -> None:
        """Serve until stop(), then drain in-flight requests and stop workers."""
        listening = self._listening
        while not self._stop.is_set():
            listening.poll_once(LOOP_TIMEOUT)
        # Logged here, not in the signal handler: see StopSignals._handle.
        log.info("%s; draining", self._stop_reason)
        listening.stop_accepting()
        if self._on_stop is not None:
            self._on_stop()
        deadline = time.monotonic() + self._shutdown_timeout
        while True:
            for channel in listening.channels():
                if not waitress_adapter.busy(channel):
                    channel.close_now()  # idle keep-alive (or lingering) ones
            if not listening.channels() or time.monotonic() >= deadline:
                break
            listening.poll_once(DRAIN_TICK)
        left = listening.channels()
        if left:
            log.warning(
                "%d connection(s) still busy after %.1f s; closing them",
                len(left),
                self._shutdown_timeout,
            )
        listening.stop(timeout=1)


class StartupInterruptedError(Exception):
    """A stop signal arrived before the server was ready; signum says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """SIGTERM (docker stop), SIGINT (Ctrl-C) and SIGHUP: drain and exit 0.

    Installed first thing. Until serving() hands it the server's stop, a
    signal raises StartupInterruptedError in the main thread, wherever
    start-up is (a migration, say): the transaction in progress rolls back,
    so nothing is half-applied, and the caller exits with one line.
    """

    def __init__(self) -> None:
        self._stop: Callable[[str], None] | None = None
        self._interrupted = False

    def install(self) -> None:
        """Handle the stop signals from now on."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)

    def serving(self, stop: Callable[[str], None]) -> None:
        """From now on a stop signal drains the server instead of interrupting."""
        self._stop = stop

    def finished(self) -> None:
        """Ignore the stop signals from now on: there is nothing left to stop.

        Python resets its own handlers to the default while it finalises,
        so a signal then (a second `docker stop`, a supervisor's repeat)
        would kill the process with -SIGTERM after a clean shutdown. An
        ignored signal stays ignored through finalisation.
        """
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self._stop is None:
            if self._interrupted:
                return  # already unwinding: let the first one finish cleanly
            self._interrupted = True
            raise StartupInterruptedError(signum)
        # Nothing is written here: a signal that interrupts a write to stderr runs
        # this handler inside that write, and writing again raises "reentrant call".
        self._stop(f"received {signal.Signals(signum).name}")
