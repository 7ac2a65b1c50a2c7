"""Slow and idle connections neither starve the workers nor stay open forever."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.helpers import ServeProcess, service_env
from tests.reliability.support import Client, serving

pytestmark = pytest.mark.slow

THREADS = 2
CHANNEL_TIMEOUT = 2
TRICKLERS = 5
IDLE = 5
BYTE_EVERY = 0.1


def connect(server: ServeProcess) -> socket.socket:
    """A raw TCP connection to the server."""
    parts = urlsplit(server.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_status(sock: socket.socket) -> int:
    """Read one response with a Content-Length; return its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(head.split(b" ", 2)[1])


def seconds_until_closed(sock: socket.socket, since: float, limit: float) -> float:
    """Wait for the server to close sock; seconds from since (inf past limit)."""
    sock.settimeout(max(0.1, since + limit - time.monotonic()))
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return float("inf")
    except ConnectionResetError:
        pass
    return time.monotonic() - since


def trickle_put(server: ServeProcess, n: int) -> int:
    """PUT a body one byte at a time; returns the status."""
    body = json.dumps({"value": f"slow upload number {n}"}).encode()
    sock = connect(server)
    try:
        sock.sendall(
            f"PUT /v1/metadata/slow{n} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        for i in range(len(body)):
            sock.sendall(body[i : i + 1])
            time.sleep(BYTE_EVERY)
        return read_status(sock)
    finally:
        sock.close()


@pytest.mark.timeout(60)
def test_slow_uploads_and_idle_sockets_do_not_starve_workers(tmp_path: Path) -> None:
    """2 workers, 5 byte-by-byte uploads and 6 idle sockets: requests stay fast."""
    db = tmp_path / "db.sqlite3"
    env = service_env(db, threads=THREADS, channel_timeout=30)
    with serving(env) as server:
        client = Client(server.url)
        assert client.request("PUT", "/v1/metadata/seed", {"value": "s"})[0] == 201
        idle = [connect(server) for _ in range(IDLE)]
        # One more that sends half a request line and then nothing.
        half = connect(server)
        half.sendall(b"GET /healthz HT")
        try:
            with ThreadPoolExecutor(TRICKLERS) as pool:
                uploads = [
                    pool.submit(trickle_put, server, n) for n in range(TRICKLERS)
                ]
                time.sleep(0.3)  # every slow upload has started its body
                slowest = 0.0
                answered = 0
                while not all(u.done() for u in uploads):
                    for method, path, body in (
                        ("GET", "/v1/metadata/seed", None),
                        ("PUT", f"/v1/metadata/fast{answered}", {"value": "f"}),
                        ("GET", "/healthz", None),
                    ):
                        begun = time.monotonic()
                        status, _, _ = client.request(method, path, body)
                        slowest = max(slowest, time.monotonic() - begun)
                        assert status in (200, 201)
                        answered += 1
                    time.sleep(0.05)
                statuses = [u.result(timeout=30) for u in uploads]
        finally:
            for sock in [*idle, half]:
                sock.close()
        print(
            f"{answered} requests during {TRICKLERS} byte-by-byte uploads and "
            f"{IDLE + 1} idle sockets on {THREADS} workers; slowest {slowest:.3f} s"
        )
        assert answered >= 30
        assert slowest < 0.5
        assert statuses == [201] * TRICKLERS
        status, _, body = client.json("GET", "/v1/metadata/slow3")
        assert (status, body["value"]) == (200, "slow upload number 3")
        client.close()


@pytest.mark.timeout(60)
def test_idle_connections_are_closed_after_the_channel_timeout(tmp_path: Path) -> None:
    """Idle, half-sent and finished keep-alive connections close after ~2 s."""
    db = tmp_path / "db.sqlite3"
    env = service_env(db, threads=THREADS, channel_timeout=CHANNEL_TIMEOUT)
    with serving(env) as server:
        opened = time.monotonic()
        idle = [connect(server) for _ in range(IDLE)]
        half = connect(server)
        half.sendall(b"PUT /v1/metadata/k HTTP/1.1\r\nContent-Le")
        kept = connect(server)
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            assert read_status(kept) == 200
            answered = time.monotonic()
            limit = CHANNEL_TIMEOUT + 3
            idle_closed = [
                seconds_until_closed(s, opened, limit) for s in [*idle, half]
            ]
            kept_closed = seconds_until_closed(kept, answered, limit)
        finally:
            for sock in [*idle, half, kept]:
                sock.close()
        print(
            f"idle and half-sent sockets closed after "
            f"{[round(s, 1) for s in idle_closed]} s; keep-alive after {kept_closed:.1f} s"
        )
        # Closed by the channel timeout: not before it, not long after it.
        for closed in [*idle_closed, kept_closed]:
            assert CHANNEL_TIMEOUT - 0.5 < closed < CHANNEL_TIMEOUT + 2.5, closed
        # The server itself is unaffected.
        client = Client(server.url)
        assert client.request("GET", "/healthz")[0] == 200
        client.close()
