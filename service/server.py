"""Serve the app with waitress; drain and close cleanly on SIGTERM/SIGINT.

waitress installs no signal handler, and its own shutdown path stops the
event loop before finished responses are flushed (the main loop writes
them). So the loop runs here: on a signal it stops accepting, keeps
serving the connections that have a request in flight until they are
answered or shutdown_timeout passes, then stops the workers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import ErrorTask

from service.middleware import new_request_id

log = logging.getLogger(__name__)

LOOP_TIMEOUT = 0.5
DRAIN_TICK = 0.05


class ProblemErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress' own error answers (431, 413, 400...) as problem+json too."""

    def execute(self) -> None:
        """Write the error waitress found as an RFC 9457 problem."""
        error = self.request.error
        request_id = new_request_id()
        problem = {
            "type": "about:blank",
            "title": error.reason,
            "status": error.code,
            "detail": str(error.body),
            "request_id": request_id,
        }
        body = json.dumps(problem).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend(
            [("Content-Type", "application/problem+json"), ("X-Request-ID", request_id)]
        )
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class ProblemChannel(HTTPChannel):  # type: ignore[misc]
    """An HTTP channel whose protocol-level errors are problem+json."""

    error_task_class = ProblemErrorTask


def _busy(channel: HTTPChannel) -> bool:
    """A request is being read, queued, run, or its answer is still buffered."""
    return bool(
        channel.requests or channel.request is not None or channel.total_outbufs_len
    )


class Server:
    """A waitress server whose run() returns after a graceful drain."""

    def __init__(
        self,
        app: Any,
        *,
        host: str,
        port: int,
        threads: int,
        shutdown_timeout: float,
        **adjustments: Any,
    ) -> None:
        self._stop = threading.Event()
        self._stop_reason = "stop requested"
        self._shutdown_timeout = shutdown_timeout
        if "channel_timeout" in adjustments:
            # waitress looks for idle channels only every cleanup_interval
            # (30 s by default): check often enough to honour the timeout.
            adjustments.setdefault(
                "cleanup_interval", max(1, int(adjustments["channel_timeout"]) // 4)
            )
        self._server = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            # Errors are problem+json from the app; never show a traceback.
            expose_tracebacks=False,
            ident="service-foundation",
            **adjustments,
        )
        self._server.channel_class = ProblemChannel

    @property
    def url(self) -> str:
        """The address the server listens on (the real port when 0 was asked)."""
        host = self._server.effective_host
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{self._server.effective_port}"

    def stop(self, reason: str = "stop requested") -> None:
        """Ask run() to drain and return; safe from a signal handler, repeatable."""
        if self._stop.is_set():
            return  # a second SIGTERM while draining changes nothing
        self._stop_reason = reason
        self._stop.set()
        # Wake the poll loop now; once it closed its trigger it is stopping anyway.
        with contextlib.suppress(OSError):
            self._server.pull_trigger()

    def _channels(self) -> list[HTTPChannel]:
        return [
            c for c in list(self._server._map.values()) if isinstance(c, HTTPChannel)
        ]

    def run(self) -> None:
        """Serve until stop(), then drain in-flight requests and stop workers."""
        socket_map = self._server._map
        use_poll = self._server.adj.asyncore_use_poll
        while not self._stop.is_set():
            wasyncore.loop(
                timeout=LOOP_TIMEOUT, use_poll=use_poll, map=socket_map, count=1
            )
        # Logged here, not in the signal handler: see install_signal_handlers.
        log.info("%s; draining", self._stop_reason)
        # Stop accepting: close the listening socket but keep the trigger.
        wasyncore.dispatcher.close(self._server)
        deadline = time.monotonic() + self._shutdown_timeout
        while True:
            for channel in self._channels():
                if not _busy(channel):
                    channel.handle_close()  # idle keep-alive connections
            if not self._channels() or time.monotonic() >= deadline:
                break
            wasyncore.loop(
                timeout=DRAIN_TICK, use_poll=use_poll, map=socket_map, count=1
            )
        left = self._channels()
        if left:
            log.warning(
                "%d connection(s) still busy after %.1f s; closing them",
                len(left),
                self._shutdown_timeout,
            )
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
        wasyncore.close_all(socket_map)


def install_signal_handlers(stop: Callable[[str], None]) -> None:
    """SIGTERM (docker stop) and SIGINT (Ctrl-C) both drain and exit 0."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        # Nothing is written here: a signal that interrupts a write to stderr runs
        # this handler inside that write, and writing again raises "reentrant call".
        stop(f"received {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
