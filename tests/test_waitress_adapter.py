"""Pins every waitress internal service.waitress_adapter uses; fails if one changes."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server
from waitress.task import ErrorTask, WSGITask

from service import waitress_adapter
from service.handoff import DETACHABLE, HANDOFF
from service.waitress_adapter import Listening, ServiceChannel, listen

MIB = 1024 * 1024


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """A WSGI app answering 200 "ok"."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


@contextlib.contextmanager
def running(listening: Listening) -> Iterator[Listening]:
    """Run the event loop in a thread, as serve's main thread does."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            listening.poll_once(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield listening
    finally:
        stop.set()
        thread.join(timeout=5)
        listening.stop(timeout=1)


def pump(listening: Listening, until: Callable[[], bool], timeout: float = 5) -> None:
    """Drive the loop from this thread until the condition holds."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "condition never held"
        listening.poll_once(0.02)


def address(listening: Listening, index: int = 0) -> tuple[str, int]:
    """(host, port) of one listening socket."""
    listener = listening.listeners[index]
    return str(listener.effective_host), int(listener.effective_port)


def read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read one answer with a Content-Length: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65_536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65_536)
    return head, body


def get(host: str, port: int) -> bytes:
    """GET / over a fresh connection; the status line."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _ = read_answer(sock)
    return head.split(b"\r\n", 1)[0]


def test_one_address_is_a_server_whose_map_holds_the_listener() -> None:
    """create_server() on one address: a BaseWSGIServer; `_map` has it and its trigger."""
    listening = listen(hello, host="127.0.0.1", port=0, threads=1)
    try:
        (listener,) = listening.listeners
        assert isinstance(listener, BaseWSGIServer)
        assert listener._map is listening.socket_map
        assert listener.channel_class is ServiceChannel
        assert listener.adj.asyncore_use_poll is True
        assert len(listening.socket_map) == 2  # the listener and its trigger
        assert listening.urls == [f"http://127.0.0.1:{listener.effective_port}"]
    finally:
        listening.stop(timeout=1)


def test_several_addresses_are_a_multi_socket_server_sharing_one_map() -> None:
    """Two addresses: MultiSocketServer.map holds both listeners; both serve."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    probe = socket.socket(socket.AF_INET6)
    try:
        probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    finally:
        probe.close()
    server = create_server(hello, listen="127.0.0.1:0 [::1]:0", threads=1)
    try:
        assert isinstance(server, MultiSocketServer)
        listeners = [s for s in server.map.values() if isinstance(s, BaseWSGIServer)]
        assert len(listeners) == 2
    finally:
        server.close()
    listening = listen(hello, listen="127.0.0.1:0 [::1]:0", threads=1)
    with running(listening):
        hosts = sorted(address(listening, i)[0] for i in range(2))
        assert hosts == ["127.0.0.1", "::1"]
        for i in range(2):
            assert get(*address(listening, i)) == b"HTTP/1.1 200 OK"
        assert {u.split("//")[1].rsplit(":", 1)[0] for u in listening.urls} == {
            "127.0.0.1",
            "[::1]",
        }


def test_accepted_connections_are_our_channel_and_busy_reads_its_state() -> None:
    """channel_class builds ServiceChannel; requests/request/total_outbufs_len say busy."""
    listening = listen(hello, host="127.0.0.1", port=0, threads=1)
    try:
        sock = socket.create_connection(address(listening), timeout=10)
        pump(listening, lambda: bool(listening.channels()))
        (channel,) = listening.channels()
        assert isinstance(channel, ServiceChannel)
        assert isinstance(channel, HTTPChannel)
        assert (channel.requests, channel.request, channel.total_outbufs_len) == (
            [],
            None,
            0,
        )
        assert not waitress_adapter.busy(channel)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # headers not finished
        pump(listening, lambda: channel.request is not None)
        assert waitress_adapter.busy(channel)
        sock.sendall(b"\r\n")
        pump(listening, lambda: not waitress_adapter.busy(channel), timeout=10)
        assert read_answer(sock)[0].startswith(b"HTTP/1.1 200 OK")
        channel.close_now()
        assert listening.channels() == []
        assert sock.recv(1) == b""
        sock.close()
    finally:
        listening.stop(timeout=1)


def test_errors_waitress_finds_use_error_task_class() -> None:
    """A body over max_request_body_size runs ProblemErrorTask: a 413 problem."""
    assert ServiceChannel.error_task_class is waitress_adapter.ProblemErrorTask
    assert issubclass(waitress_adapter.ProblemErrorTask, ErrorTask)
    listening = listen(
        hello, host="127.0.0.1", port=0, threads=1, max_request_body_size=1024
    )
    with running(listening), socket.create_connection(address(listening)) as sock:
        sock.sendall(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        head, body = read_answer(sock)
    assert head.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert b"Content-Type: application/problem+json" in head
    problem = json.loads(body)
    assert (problem["status"], problem["title"]) == (413, "Content Too Large")
    assert "1024" in problem["detail"]  # waitress' own explanation


def test_lingering_close_reads_what_the_client_still_sends() -> None:
    """After the 413 the channel keeps reading: a 4 MiB upload then reads its answer."""
    listening = listen(
        hello, host="127.0.0.1", port=0, threads=1, max_request_body_size=1024
    )
    with running(listening), socket.create_connection(address(listening)) as sock:
        sock.settimeout(10)
        sock.sendall(
            f"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: {4 * MIB}\r\n\r\n".encode()
        )
        sock.sendall(b"x" * (4 * MIB))  # would be reset without the lingering close
        head, _ = read_answer(sock)
        assert sock.recv(1) == b""  # the server's FIN after the answer
        (channel,) = listening.channels()
        assert channel._lingering
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + 5
        while listening.channels() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert listening.channels() == []  # closed at the client's end of data
    assert head.startswith(b"HTTP/1.1 413 ")


def test_poll_serves_descriptors_past_fd_setsize() -> None:
    """poll_once() uses poll(2): a listener whose fd is past 1024 still serves."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        if hard != resource.RLIM_INFINITY and hard < 1200:
            pytest.skip(f"the hard open-file limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        listening = listen(hello, host="127.0.0.1", port=0, threads=1)
        assert listening.listeners[0].socket.fileno() > 1024
        with running(listening):
            assert get(*address(listening)) == b"HTTP/1.1 200 OK"
    finally:
        for fd in fillers:
            os.close(fd)


def test_stop_accepting_closes_the_listener_but_keeps_its_trigger() -> None:
    """dispatcher.close() on a listener: new connections refused, wake() still works."""
    listening = listen(hello, host="127.0.0.1", port=0, threads=1)
    try:
        host, port = address(listening)
        listening.stop_accepting()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, port), timeout=2).close()
        assert len(listening.socket_map) == 1  # the trigger
        listening.wake()
        began = time.monotonic()
        listening.poll_once(5)
        assert time.monotonic() - began < 1  # woken, not timed out
    finally:
        listening.stop(timeout=1)


def test_stop_ends_the_workers_and_empties_the_map() -> None:
    """stop(): task_dispatcher.shutdown() ends the threads; close_all() the sockets."""
    listening = listen(hello, host="127.0.0.1", port=0, threads=2)
    assert len(listening.task_dispatcher.threads) == 2
    listening.stop(timeout=1)
    assert listening.socket_map == {}
    assert not listening.task_dispatcher.threads


class Taker:
    """A Handoff that records what it was given (service.handoff)."""

    def __init__(self) -> None:
        self.adopted: list[tuple[socket.socket, bytes, bool]] = []
        self.cancelled = 0

    def adopt(self, sock: socket.socket, head: bytes, chunked: bool) -> None:
        """Keep the socket, the head and the framing."""
        self.adopted.append((sock, head, chunked))

    def cancel(self) -> None:
        """Count the cancellations."""
        self.cancelled += 1


def handing_over(taker: Taker, status: str = "200 OK") -> Callable[..., Any]:
    """A WSGI app that asks to hand its connection over (when the server can)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        assert environ.get(DETACHABLE) is True
        environ[HANDOFF] = taker
        start_response(status, [("Content-Type", "text/event-stream")])
        return []

    return app


def test_a_handed_over_connection_leaves_waitress_with_its_head() -> None:
    """HandoffTask builds the head; the channel leaves the map with its socket open."""
    assert ServiceChannel.task_class is waitress_adapter.HandoffTask
    assert issubclass(waitress_adapter.HandoffTask, WSGITask)
    taker = Taker()
    listening = listen(handing_over(taker), host="127.0.0.1", port=0, threads=1)
    with running(listening), socket.create_connection(address(listening)) as sock:
        sock.settimeout(10)
        # A pipelined second request is dropped: it could never be answered.
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        deadline = time.monotonic() + 5
        while not taker.adopted and time.monotonic() < deadline:
            time.sleep(0.01)
        ((taken, head, chunked),) = taker.adopted
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Transfer-Encoding: chunked" in head
        assert head.endswith(b"\r\n\r\n")
        assert chunked
        assert listening.channels() == []  # out of waitress' map and its count
        taken.sendall(head + b"5\r\nhello\r\n")
        data = b""
        while not data.endswith(b"hello\r\n"):
            data += sock.recv(4096)
        assert data.count(b"HTTP/1.1") == 1  # nothing written by waitress
        taken.close()
        assert taker.cancelled == 0


def test_http_1_0_hands_over_unchunked_and_errors_are_answered_as_usual() -> None:
    """HTTP/1.0 gets chunked False; a non-200 cancels the hand-off and is answered."""
    taker = Taker()
    listening = listen(handing_over(taker), host="127.0.0.1", port=0, threads=1)
    with running(listening), socket.create_connection(address(listening)) as sock:
        sock.settimeout(10)
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        deadline = time.monotonic() + 5
        while not taker.adopted and time.monotonic() < deadline:
            time.sleep(0.01)
        ((taken, head, chunked),) = taker.adopted
        assert head.startswith(b"HTTP/1.0 200 OK\r\n")
        assert not chunked
        taken.close()
    refused = Taker()
    listening = listen(
        handing_over(refused, "429 Too Many Requests"),
        host="127.0.0.1",
        port=0,
        threads=1,
    )
    with running(listening), socket.create_connection(address(listening)) as sock:
        sock.settimeout(10)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 429 ")
    assert refused.cancelled == 1
    assert refused.adopted == []


def test_bind_resolves_and_listens_as_waitress_and_waitress_serves_the_sockets() -> (
    None
):
    """Adjustments(host=, port=).listen and .backlog give bind() waitress' own
    addresses and backlog; listen(sockets=) then serves what bind() bound."""
    from waitress.adjustments import Adjustments

    adjustments = Adjustments(host="localhost", port=0)
    assert adjustments.backlog == 1024
    families = [family for family, _, _, _ in adjustments.listen]
    assert socket.AF_INET in families
    for _, kind, _, address in adjustments.listen:
        assert kind == socket.SOCK_STREAM
        assert address[1] == 0
    sockets = waitress_adapter.bind("127.0.0.1", 0)
    try:
        (sock,) = sockets
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        port = sock.getsockname()[1]
        listening = listen(hello, sockets=sockets, threads=1)
        with running(listening):
            assert get("127.0.0.1", port) == b"HTTP/1.1 200 OK"
    finally:
        for sock in sockets:
            sock.close()


def test_bind_refuses_a_taken_port_and_an_unknown_host() -> None:
    """A port in use is an OSError, a host that does not resolve a ValueError
    (what serve turns into its one-line ListenError)."""
    taken = waitress_adapter.bind("127.0.0.1", 0)
    try:
        port = taken[0].getsockname()[1]
        with pytest.raises(OSError, match="in use"):
            waitress_adapter.bind("127.0.0.1", port)
    finally:
        taken[0].close()
    with pytest.raises(ValueError, match="Invalid host"):
        waitress_adapter.bind("no-such-host.invalid", 8080)
