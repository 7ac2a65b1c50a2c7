"""The streams one process holds: a selector over their sockets, and their indexes.

Every stream's socket is registered for reading (a client that goes away
is noticed at once: its end of the connection reads as closed) and, while
it has bytes the socket did not take, for writing. epoll, so a thousand
idle streams cost nothing per wake-up. Only the hub's thread touches it.
"""

from __future__ import annotations

import logging
import random
import selectors
import time
from collections.abc import Callable

from service.events import sse
from service.events.streams import Stream
from service.metrics import Metrics

log = logging.getLogger("service.events")

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_READ | selectors.EVENT_WRITE
# The reconnection delay a stream is told at shutdown, spread so that
# clients do not all come back at the same moment.
SHUTDOWN_RETRY_MS = (1000, 5000)


class Holding:
    """Open streams by descriptor, user and token, with their selector."""

    def __init__(
        self,
        selector: selectors.BaseSelector,
        buffer_bytes: int,
        metrics: Metrics | None,
        release: Callable[[int], None],
    ) -> None:
        self.selector = selector
        self.cap = buffer_bytes
        self.metrics = metrics
        self._release = release
        self.streams: dict[int, Stream] = {}
        self.by_user: dict[int, set[Stream]] = {}
        self.by_token: dict[int, set[Stream]] = {}
        # Called with a stream when it closes (the loop forgets it too).
        self.on_close: Callable[[Stream], None] = lambda _stream: None

    def __contains__(self, stream: Stream) -> bool:
        return self.streams.get(stream.fd) is stream

    def __len__(self) -> int:
        return len(self.streams)

    def add(self, stream: Stream, head: bytes) -> bool:
        """Hold a new stream and send its response head; False if it failed."""
        self.streams[stream.fd] = stream
        self.selector.register(stream.fd, READ, stream)
        self.by_user.setdefault(stream.user_id, set()).add(stream)
        self.by_token.setdefault(stream.token_id, set()).add(stream)
        if self.metrics is not None:
            self.metrics.event_streams.inc()
        if not stream.send_raw(head, self.cap):
            self.close(stream, "error")
            return False
        return True

    def send(self, stream: Stream, frame: bytes) -> bool:
        """Send a frame; a stream over its cap or whose socket failed is closed."""
        had = stream.pending is not None
        if not stream.send(frame, self.cap):
            self.close(stream, "slow" if stream.pending is not None else "error")
            return False
        if stream.pending is not None and not had:
            self.selector.modify(stream.fd, WRITE, stream)
        return True

    def on_ready(self, stream: Stream, mask: int) -> None:
        """The selector reported the stream's socket."""
        if mask & selectors.EVENT_READ and stream.closed_by_peer():
            self.close(stream, "client")
            return
        if mask & selectors.EVENT_WRITE:
            if not stream.flush():
                self.close(stream, "error")
            elif stream.pending is None:
                self.selector.modify(stream.fd, READ, stream)

    def heartbeats(self, now: float, interval: float) -> None:
        """A comment to every stream that sent nothing for half an interval."""
        quiet = now - interval / 2
        for stream in list(self.streams.values()):
            if stream.pending is None and stream.last_write <= quiet:
                self.send(stream, sse.HEARTBEAT)

    def close(self, stream: Stream, reason: str, *, clean: bool = False) -> None:
        """End a stream: unregister it, close its socket, release its slot."""
        if self.streams.get(stream.fd) is not stream:
            return
        del self.streams[stream.fd]
        if clean and stream.chunked:
            stream.send_raw(sse.LAST_CHUNK, self.cap * 2)
        self.selector.unregister(stream.fd)
        for index, key in (
            (self.by_user, stream.user_id),
            (self.by_token, stream.token_id),
        ):
            held = index.get(key)
            if held is not None:
                held.discard(stream)
                if not held:
                    del index[key]
        self.on_close(stream)
        stream.close()
        self._release(stream.token_id)
        if self.metrics is not None:
            self.metrics.event_streams.dec()
            self.metrics.event_streams_closed.labels(reason).inc()
        log.info(
            "event stream closed: %s",
            reason,
            extra={
                "event.action": "stream_closed",
                "event.reason": reason,
                "http.request.id": stream.request_id,
                "events": stream.sent,
                "event.duration": int((time.monotonic() - stream.opened) * 1e9),
            },
        )

    def close_all(self, deadline: float) -> None:
        """End every stream with a retry hint, sent until deadline at the latest."""
        low, high = SHUTDOWN_RETRY_MS
        for stream in list(self.streams.values()):
            hint = sse.retry(random.randint(low, high))  # noqa: S311 - spread only
            if stream.send(hint, self.cap * 2) and stream.chunked:
                stream.send_raw(sse.LAST_CHUNK, self.cap * 2)
        while time.monotonic() < deadline:
            waiting = [s for s in self.streams.values() if s.pending is not None]
            if not waiting:
                break
            for stream in waiting:
                if not stream.flush():
                    stream.pending = None
            time.sleep(0.01)
        for stream in list(self.streams.values()):
            self.close(stream, "shutdown")
