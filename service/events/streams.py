"""One event stream: a non-blocking socket, what it still has to send, where it is.

A write goes straight to the socket; what the socket does not take is
kept, and sent when the socket is writable again (the hub's selector
says when). A client that reads slower than events arrive lets that grow:
past the cap the stream is closed, and the client resumes from its last
id on its next connection. Nothing is copied per recipient: every stream
of an event is handed the same bytes.
"""

from __future__ import annotations

import contextlib
import socket
import time

from service.events import sse


class Stream:
    """An open event stream of one user, authenticated by one token."""

    __slots__ = (
        "chunked",
        "fd",
        "last_event_id",
        "last_write",
        "live",
        "opened",
        "pending",
        "position",
        "request_id",
        "sent",
        "sock",
        "token_id",
        "user_id",
    )

    def __init__(
        self,
        sock: socket.socket,
        chunked: bool,
        user_id: int,
        token_id: int,
        last_event_id: str | None,
        request_id: str,
    ) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.chunked = chunked
        self.user_id = user_id
        self.token_id = token_id
        # As the client sent it (None: a new stream); position once started.
        self.last_event_id = last_event_id
        self.request_id = request_id
        # The newest event id this stream was considered for (None: not yet).
        self.position: int | None = None
        # True once it follows the hub's position (its backlog is sent).
        self.live = False
        self.pending: bytearray | None = None
        self.opened = self.last_write = time.monotonic()
        self.sent = 0

    def send_raw(self, data: bytes, cap: int) -> bool:
        """Send data as it is (the response head); False when the stream must end."""
        if self.pending is not None:
            self.pending += data
            return len(self.pending) <= cap
        try:
            written = self.sock.send(data)
        except BlockingIOError:
            written = 0
        except OSError:
            return False
        self.last_write = time.monotonic()
        if written < len(data):
            self.pending = bytearray(data[written:])
            return len(self.pending) <= cap
        return True

    def send(self, frame: bytes, cap: int) -> bool:
        """Send one frame (as a chunk on HTTP/1.1); False when the stream must end."""
        return self.send_raw(sse.chunk(frame) if self.chunked else frame, cap)

    def flush(self) -> bool:
        """Send what is kept, as much as the socket takes; False on a socket error."""
        if self.pending is None:
            return True
        try:
            written = self.sock.send(self.pending)
        except BlockingIOError:
            return True
        except OSError:
            return False
        self.last_write = time.monotonic()
        del self.pending[:written]
        if not self.pending:
            self.pending = None
        return True

    @property
    def backlog_bytes(self) -> int:
        """Bytes written to the stream that the socket has not taken yet."""
        return 0 if self.pending is None else len(self.pending)

    def closed_by_peer(self) -> bool:
        """Read what the client sent (discarded): True at its end or an error."""
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return not data

    def close(self) -> None:
        """Close the socket."""
        with contextlib.suppress(OSError):
            self.sock.close()
