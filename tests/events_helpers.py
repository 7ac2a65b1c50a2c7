"""Helpers for the live-delivery tests: a Server-Sent Events client on a raw socket.

A raw socket, not an HTTP library, so that a test sees exactly what went
over the wire: the head, each chunk, comments (heartbeats), `retry:` and
`id:`-only frames, and the clean end of a chunked body.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Frame:
    """One SSE frame as sent: its fields (a comment is kept as comment)."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    retry: int | None = None
    comment: str | None = None

    @property
    def json(self) -> Any:
        """The data, decoded."""
        assert self.data is not None
        return json.loads(self.data)


@dataclass
class SseStream:
    """An open GET /v1/events on its own socket."""

    sock: socket.socket
    status: int
    headers: dict[str, str]
    body: bytes = b""
    chunked: bool = False
    ended: bool = False
    raw: bytearray = field(default_factory=bytearray)
    text: bytearray = field(default_factory=bytearray)
    last_id: str | None = None

    def _fill(self, deadline: float) -> bool:
        """Read more bytes; False at the end of the connection."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no frame in time")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError("no frame in time") from None
        except ConnectionResetError:
            data = b""
        if not data:
            return False
        self.raw += data
        self._dechunk()
        return True

    def _dechunk(self) -> None:
        if not self.chunked:
            self.text += self.raw
            self.raw.clear()
            return
        while True:
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                return
            size = int(self.raw[:line_end], 16)
            if size == 0:
                self.ended = True
                del self.raw[: line_end + 2]
                return
            if len(self.raw) < line_end + 2 + size + 2:
                return
            start = line_end + 2
            self.text += self.raw[start : start + size]
            del self.raw[: start + size + 2]

    def frame(self, timeout: float = 10) -> Frame | None:
        """The next frame (comments included); None when the stream ended."""
        deadline = time.monotonic() + timeout
        while True:
            end = self.text.find(b"\n\n")
            if end >= 0:
                block = bytes(self.text[:end]).decode()
                del self.text[: end + 2]
                return self._parse(block)
            if self.ended or not self._fill(deadline):
                return None

    def _parse(self, block: str) -> Frame:
        frame = Frame()
        for line in block.split("\n"):
            if line.startswith(":"):
                frame.comment = line[1:].strip()
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                frame.id = value
                self.last_id = value
            elif name == "event":
                frame.event = value
            elif name == "data":
                frame.data = value if frame.data is None else frame.data + "\n" + value
            elif name == "retry":
                frame.retry = int(value)
        return frame

    def event(self, timeout: float = 10) -> Frame:
        """The next frame that dispatches an event (comments, retry, id-only skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.frame(max(0.0, deadline - time.monotonic()))
            if frame is None:
                raise EOFError("the stream ended")
            if frame.event is not None or frame.data is not None:
                return frame

    def events(self, count: int, timeout: float = 10) -> list[Frame]:
        """The next count events."""
        return [self.event(timeout) for _ in range(count)]

    def until_end(self, timeout: float = 10) -> list[Frame]:
        """Every frame up to the end of the stream."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            frame = self.frame(max(0.0, deadline - time.monotonic()))
            if frame is None:
                return frames
            frames.append(frame)

    def until_end_or(self, seconds: float) -> list[Frame]:
        """Every frame for seconds (or up to the end of the stream)."""
        frames = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                frame = self.frame(max(0.001, deadline - time.monotonic()))
            except TimeoutError:
                break
            if frame is None:
                break
            frames.append(frame)
        return frames

    def close(self) -> None:
        """Close the connection (the client goes away)."""
        self.sock.close()


def open_stream(
    url: str,
    token: str | None,
    last_event_id: str | None = None,
    query: dict[str, str] | None = None,
    timeout: float = 10,
) -> SseStream:
    """GET /v1/events on a new connection; the head read, the body not yet."""
    parts = urllib.parse.urlsplit(url)
    path = "/v1/events"
    if query:
        path += "?" + urllib.parse.urlencode(query)
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Accept: text/event-stream",
    ]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if last_event_id is not None:
        lines.append(f"Last-Event-ID: {last_event_id}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    sock.sendall(request)
    buffer = bytearray()
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buffer:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(65536)
        if not data:
            break
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    stream = SseStream(sock, status, headers)
    stream.chunked = headers.get("transfer-encoding", "").lower() == "chunked"
    if status != 200:
        length = int(headers.get("content-length", "0"))
        body = bytearray(rest)
        while len(body) < length:
            data = sock.recv(65536)
            if not data:
                break
            body += data
        stream.body = bytes(body)
        sock.close()
        return stream
    stream.raw += rest
    stream._dechunk()
    return stream
