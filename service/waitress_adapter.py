"""Every use of a waitress internal, each named with why (waitress 3.0.2, pinned).

waitress' public API is serve()/create_server().run(), which installs no
signal handler, drops finished responses on shutdown and closes a
connection the moment it answered an error. service/server.py needs more,
and takes all of it from here:

1. `ErrorTask.execute()` (subclassed): waitress' own answers (400, 413,
   431...) as problem+json, with RFC 9110 phrases.
2. `HTTPChannel` (subclassed): `error_task_class` picks the task above;
   `handle_close()`, `readable()`, `writable()` and `handle_read()` are
   overridden for a lingering close after an error answer.
3. `BaseWSGIServer.channel_class`, set on every listening socket's server,
   so that waitress builds our channel for each accepted connection.
4. The socket map: `BaseWSGIServer._map` / `MultiSocketServer.map` (every
   listener, trigger and channel), to run the loop ourselves, find the
   listeners when the host resolved to several addresses, and the busy
   connections while draining.
5. A channel's `requests`, `request` and `total_outbufs_len`: whether a
   request is being read, queued, run, or its answer is still buffered.
6. `wasyncore.loop(count=1, use_poll=True)`, `wasyncore.dispatcher.close()`
   (a listener's socket without its trigger) and `wasyncore.close_all()`.
7. `pull_trigger()` and `task_dispatcher.shutdown()`.
8. A stream's hand-off (service.handoff): `WSGITask` (subclassed as
   `HandoffTask`, the channel's `task_class`): `get_environment()` marks
   the request DETACHABLE; `finish()` builds the head with
   `build_response_header()` (and its `chunked_response`) instead of
   writing it, and clears `close_on_finish`. The channel's
   `requests_lock`/`requests` (pipelined requests after a stream are
   dropped), `writable()`/`handle_write()` (the loop thread detaches once
   `service()` popped the request), `del_channel()` (out of the socket map
   and `active_channels`, the socket left open) and `outbufs`.
9. `Adjustments(host=, port=).listen` and `.backlog`: the addresses a host
   resolves to and the listen backlog, so that a supervisor binds its
   listening sockets exactly as waitress would before forking workers,
   which then serve them through waitress' public `sockets=` argument.

tests/test_waitress_adapter.py fails when waitress changes under any of them.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask, WSGITask

from service.handoff import DETACHABLE, HANDOFF, Handoff
from service.middleware import new_request_id
from service.problems import PROBLEM_JSON, phrase

# Lingering close, as nginx's lingering_time/lingering_timeout and Apache's
# lingering close: after answering an error (413) while the client is still
# sending, read and discard for at most this long, this long between
# reads, and this many bytes, so the answer is not lost to a TCP reset.
LINGER_SECONDS = 30.0
LINGER_IDLE_SECONDS = 5.0
LINGER_MAX_BYTES = 128 * 1024 * 1024
_DISCARD_CHUNK = 256 * 1024


class ProblemErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress' own error answers (431, 413, 400...) as problem+json too."""

    def execute(self) -> None:
        """Write the error waitress found as an RFC 9457 problem."""
        error = self.request.error
        request_id = new_request_id()
        title = phrase(error.code)
        problem = {
            "type": "about:blank",
            "title": title,
            "status": error.code,
            "detail": str(error.body),
            "request_id": request_id,
        }
        body = json.dumps(problem).encode()
        self.status = f"{error.code} {title}"
        self.response_headers.extend(
            [("Content-Type", PROBLEM_JSON), ("X-Request-ID", request_id)]
        )
        self.set_close_on_finish()
        # The client may still be sending the request waitress refused.
        self.channel.linger_on_close = True
        self.content_length = len(body)
        self.write(body)


class HandoffTask(WSGITask):  # type: ignore[misc]
    """A WSGI task whose response may be handed over after its head (a stream)."""

    def get_environment(self) -> dict[str, Any]:
        """waitress' environ, marked: this server can hand the connection over."""
        environ: dict[str, Any] = WSGITask.get_environment(self)
        environ[DETACHABLE] = True
        return environ

    def finish(self) -> None:
        """Hand the connection over when the app asked for it; else as waitress."""
        handoff: Handoff | None = (self.environ or {}).pop(HANDOFF, None)
        if handoff is None:
            WSGITask.finish(self)
            return
        started: bool = getattr(self, "wrote_header", False)
        if started or not self.status.startswith("200"):
            handoff.cancel()  # an error after the responder: answered as usual
            WSGITask.finish(self)
            return
        head = self.build_response_header()
        self.wrote_header = True
        # The connection is not closed when the task ends: it changes hands.
        self.close_on_finish = False
        self.channel.hand_over(handoff, head, self.chunked_response)


class ServiceChannel(HTTPChannel):  # type: ignore[misc]
    """A channel with problem+json errors, a lingering close, and hand-offs."""

    task_class = HandoffTask
    error_task_class = ProblemErrorTask
    linger_on_close = False
    _handoff: tuple[Handoff, bytes, bool] | None = None
    _lingering = False
    _linger_until = 0.0
    _idle_until = 0.0
    _linger_left = 0

    def close_now(self) -> None:
        """Close at once, lingering or not (shutdown, idle connections)."""
        HTTPChannel.handle_close(self)

    def handle_close(self) -> None:
        """After an error answer: stop sending, keep reading; else close."""
        if not self.linger_on_close or self._lingering or not self.connected:
            self.close_now()
            return
        try:
            # FIN after the answer; the client reads it once it stops sending.
            self.socket.shutdown(socket.SHUT_WR)
        except OSError:
            self.close_now()
            return
        now = time.monotonic()
        self._lingering = True
        self._linger_until = now + LINGER_SECONDS
        self._idle_until = now + LINGER_IDLE_SECONDS
        self._linger_left = LINGER_MAX_BYTES
        self.will_close = self.close_when_flushed = False

    def hand_over(self, handoff: Handoff, head: bytes, chunked: bool) -> None:
        """From the task's thread: detach once the task is done (see writable)."""
        with self.requests_lock:
            # Requests pipelined after a stream would never be answered.
            for request in self.requests[1:]:
                request.close()
            del self.requests[1:]
            self._handoff = (handoff, head, chunked)

    def writable(self) -> bool:
        """Also when a hand-off waits and service() has popped its request."""
        if self._handoff is not None:
            return not self.requests
        return bool(HTTPChannel.writable(self))

    def handle_write(self) -> None:
        """Detach for a waiting hand-off; else waitress' flush."""
        if self._handoff is not None:
            if not self.requests:
                self._detach()
            return
        HTTPChannel.handle_write(self)

    def _detach(self) -> None:
        """Out of the socket map, the socket to the hand-off (loop thread)."""
        assert self._handoff is not None  # noqa: S101 - handle_write checked
        handoff, head, chunked = self._handoff
        self._handoff = None
        sock = self.socket
        self.del_channel()
        self.connected = False
        for outbuf in self.outbufs:
            outbuf.close()
        try:
            taken = socket.socket(
                sock.family, sock.type, sock.proto, fileno=sock.detach()
            )
        except OSError:
            handoff.cancel()
            return
        handoff.adopt(taken, head, chunked)

    def readable(self) -> bool:
        """While lingering: read until a bound is reached (then close)."""
        if self._handoff is not None:
            return False  # nothing more is read here: the stream's owner reads
        if not self._lingering:
            return bool(HTTPChannel.readable(self))
        now = time.monotonic()
        if now >= self._linger_until or now >= self._idle_until:
            self.will_close = True  # writable() now: handle_write() closes
            return False
        return True

    def handle_read(self) -> None:
        """While lingering: discard what arrives; close at its end or bound."""
        if not self._lingering:
            HTTPChannel.handle_read(self)
            return
        try:
            data = self.socket.recv(_DISCARD_CHUNK)
        except OSError:
            data = b""
        self._linger_left -= len(data)
        if not data or self._linger_left <= 0:
            self.close_now()
            return
        self._idle_until = time.monotonic() + LINGER_IDLE_SECONDS
        self.last_activity = time.time()  # not idle: channel_timeout waits


def busy(channel: HTTPChannel) -> bool:
    """A request is being read, queued, run, or its answer is still buffered."""
    return bool(
        channel.requests or channel.request is not None or channel.total_outbufs_len
    )


@dataclass
class Listening:
    """The sockets create_server() bound, one per address the host resolved to."""

    socket_map: dict[int, Any]
    listeners: list[BaseWSGIServer]
    task_dispatcher: Any

    @property
    def urls(self) -> list[str]:
        """http:// URLs of every listening socket (the real port when 0 was asked)."""
        urls = []
        for listener in self.listeners:
            host = str(listener.effective_host)
            shown = f"[{host}]" if ":" in host else host
            urls.append(f"http://{shown}:{listener.effective_port}")
        return urls

    def poll_once(self, timeout: float) -> None:
        """Run one pass of the event loop (poll(2): no FD_SETSIZE limit)."""
        wasyncore.loop(timeout=timeout, use_poll=True, map=self.socket_map, count=1)

    def wake(self) -> None:
        """Interrupt a poll in progress, from any thread or a signal handler."""
        self.listeners[0].pull_trigger()

    def stop_accepting(self) -> None:
        """Close the listening sockets; keep their triggers and the channels."""
        for listener in self.listeners:
            if listener.socket is not None:
                wasyncore.dispatcher.close(listener)

    def channels(self) -> list[ServiceChannel]:
        """The open client connections."""
        return [c for c in list(self.socket_map.values()) if isinstance(c, HTTPChannel)]

    def stop(self, timeout: float) -> None:
        """Stop the worker threads (cancelling queued tasks), close every socket."""
        self.task_dispatcher.shutdown(cancel_pending=True, timeout=timeout)
        wasyncore.close_all(self.socket_map)


def listen(app: Any, **adjustments: Any) -> Listening:
    """create_server() with our channel on every listening socket."""
    server = create_server(app, asyncore_use_poll=True, **adjustments)
    # One address: the server itself; several: a MultiSocketServer whose
    # listeners are only reachable through the socket map they share.
    socket_map = server._map if isinstance(server, BaseWSGIServer) else server.map
    listeners = [s for s in socket_map.values() if isinstance(s, BaseWSGIServer)]
    for listener in listeners:
        listener.channel_class = ServiceChannel
    return Listening(socket_map, listeners, server.task_dispatcher)


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for host and port, bound and listening as waitress does.

    One per address the host resolves to (each with its own free port when
    port is 0), IPv6 ones IPv6-only, all with SO_REUSEADDR. OSError when
    one cannot be bound, ValueError for a host that does not resolve.
    """
    adjustments = Adjustments(host=host, port=port)
    bound: list[socket.socket] = []
    try:
        for family, kind, proto, address in adjustments.listen:
            sock = socket.socket(family, kind, proto)
            bound.append(sock)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(adjustments.backlog)
    except BaseException:
        for sock in bound:
            sock.close()
        raise
    return bound
