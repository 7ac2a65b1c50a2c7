"""The hub: this process's event streams, held by one thread of their own.

Request threads reserve a stream (the per-token and per-process limits,
429 and 503 past them) and hand the connection over once the response
head is built (service/handoff.py); writers poke the hub after they
committed an event, so a stream held here gets it without waiting for
the next poll. Everything else happens on the hub's thread
(service/events/loop.py): no waitress thread is held by a stream.

The thread starts on first use in each process (after a fork too: the
parent's thread, pipe and connections are not the child's), and stops
when the database closes (Database.on_close) or at shutdown, which ends
every stream with a retry hint.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from db.database import Database
from db.domain.records import Caller
from service.config import Settings
from service.events.following import Following
from service.events.holding import Holding
from service.events.loop import WATCH, Limits, StreamLoop
from service.events.streams import Stream
from service.metrics import Metrics

log = logging.getLogger("service.events")

WAKE = "wake"
SHUTDOWN_GRACE = 1.0


class StreamRefusedError(Exception):
    """No stream for this request: status (429 or 503) and why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


@dataclass(eq=False)
class Ticket:
    """A reserved stream, waiting for its connection (a service.handoff.Handoff)."""

    hub: Hub
    user_id: int
    token_id: int
    last_event_id: str | None
    request_id: str
    done: bool = False

    def adopt(self, sock: socket.socket, head: bytes, chunked: bool) -> None:
        """The connection, from the server's loop thread: queue it for the hub."""
        if self.done:
            sock.close()
            return
        self.done = True
        stream = Stream(
            sock,
            chunked,
            self.user_id,
            self.token_id,
            self.last_event_id,
            self.request_id,
        )
        self.hub.arrive(stream, head)

    def cancel(self) -> None:
        """The response went out otherwise: give the slot back."""
        if not self.done:
            self.done = True
            self.hub.release(self.token_id)


class Hub:
    """This process's event streams and the thread that holds them."""

    def __init__(
        self, database: Database, settings: Settings, metrics: Metrics | None = None
    ) -> None:
        self._database = database
        listen = settings.events_listen_url
        self._listen_url = listen.get_secret_value() if listen is not None else None
        database.events.notify = self._listen_url is not None
        self._following = Following(
            database, timedelta(hours=settings.events_retention_hours)
        )
        self._limits = Limits(
            settings.events_heartbeat,
            settings.events_buffer_bytes,
            settings.events_poll_interval,
        )
        self._per_token = settings.events_streams_per_token
        self._max_streams = settings.events_max_streams
        self.metrics = metrics
        self._lock = threading.Lock()
        self._reserved: dict[int, int] = {}
        self._total = 0
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: StreamLoop | None = None
        self._wake_r = self._wake_w = -1
        self._stopping = threading.Event()
        self._closing = False
        database.on_close(self.close)

    def limit_streams(self, streams: int) -> None:
        """Hold at most this many streams (what the open-file limit leaves)."""
        self._max_streams = min(self._max_streams, streams)

    # From request threads.

    def reserve(
        self, caller: Caller, last_event_id: str | None, request_id: str
    ) -> Ticket:
        """A stream slot for the caller's token; StreamRefusedError past a limit."""
        if self._closing:
            raise StreamRefusedError(503, "the server is shutting down")
        self.start()
        token_id = caller.token_id
        with self._lock:
            if self._closing:
                raise StreamRefusedError(503, "the server is shutting down")
            if self._total >= self._max_streams:
                raise StreamRefusedError(
                    503,
                    f"this server holds its limit of {self._max_streams} event "
                    "streams (SERVICE_EVENTS_MAX_STREAMS)",
                )
            held = self._reserved.get(token_id, 0)
            if held >= self._per_token:
                raise StreamRefusedError(
                    429,
                    f"this token holds {held} event streams on this server, its "
                    f"limit (SERVICE_EVENTS_STREAMS_PER_TOKEN); close one first",
                )
            self._reserved[token_id] = held + 1
            self._total += 1
        return Ticket(self, caller.user.id, token_id, last_event_id, request_id)

    def release(self, token_id: int) -> None:
        """A reserved or open stream of token_id ended."""
        with self._lock:
            held = self._reserved.get(token_id, 0) - 1
            if held > 0:
                self._reserved[token_id] = held
            else:
                self._reserved.pop(token_id, None)
            self._total = max(0, self._total - 1)

    def poke(self) -> None:
        """An event was committed in this process: read the table now."""
        loop = self._loop
        if loop is not None and self._pid == os.getpid():
            loop.poked = True
            self._wake()

    def arrive(self, stream: Stream, head: bytes) -> None:
        """A handed-over connection (from the server's loop thread)."""
        loop = self._loop
        if loop is None or self._closing or self._pid != os.getpid():
            stream.close()
            self.release(stream.token_id)
            return
        loop.incoming.append((stream, head))
        self._wake()

    # Life.

    def start(self) -> None:
        """Start the thread in this process unless it runs."""
        pid = os.getpid()
        thread = self._thread
        if thread is not None and self._pid == pid and thread.is_alive():
            return
        with self._lock:
            if (
                self._thread is not None
                and self._pid == pid
                and self._thread.is_alive()
            ):
                return
            if self._pid != pid:  # a fork: none of the parent's streams are ours
                self._reserved.clear()
                self._total = 0
            self._pid = pid
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
            selector = selectors.DefaultSelector()
            selector.register(self._wake_r, selectors.EVENT_READ, WAKE)
            holding = Holding(
                selector, self._limits.buffer_bytes, self.metrics, self.release
            )
            engine = self._database.engine
            self._loop = StreamLoop(
                self._following,
                lambda: engine.event_watch(self._listen_url),
                self._limits,
                holding,
            )
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._run, args=(self._loop,), name="event-streams", daemon=True
            )
            self._thread.start()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (already rung) or closed
            os.write(self._wake_w, b"!")

    def _run(self, loop: StreamLoop) -> None:
        selector = loop.holding.selector
        try:
            while not self._stopping.is_set():
                for key, mask in selector.select(loop.timeout()):
                    if key.data is WAKE:
                        _drain(self._wake_r)
                    elif key.data is WATCH:
                        loop.notified()
                    else:
                        loop.holding.on_ready(key.data, mask)
                loop.run_pass()
        except Exception:
            log.exception(
                "the event stream thread failed",
                extra={"event.action": "events_failed"},
            )
        finally:
            loop.holding.close_all(time.monotonic() + SHUTDOWN_GRACE)
            loop.drop_watch()
            selector.close()
            with self._lock:
                fds, self._wake_r, self._wake_w = (self._wake_r, self._wake_w), -1, -1
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def shutdown(self) -> None:
        """End every stream with a retry hint and stop the thread (idempotent)."""
        with self._lock:
            self._closing = True
        thread = self._thread
        if thread is None or self._pid != os.getpid():
            return
        self._stopping.set()
        self._wake()
        thread.join(timeout=SHUTDOWN_GRACE + 5)
        self._loop = None

    def close(self) -> None:
        """Stop before the database closes (its connections go with it)."""
        self.shutdown()

    @property
    def streams(self) -> int:
        """Streams open or reserved in this process."""
        return self._total


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
