"""Bodies far over the limit: the 413 problem reaches ordinary clients."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from service.waitress_adapter import LINGER_IDLE_SECONDS, LINGER_MAX_BYTES
from tests.helpers import ServeProcess, service_env
from tests.reliability.support import serving

pytestmark = pytest.mark.slow

MIB = 1024 * 1024


def put_with_urllib(
    url: str, data: bytes | Iterator[bytes], headers: dict[str, str]
) -> tuple[int, dict[str, str], dict[str, object]]:
    """PUT with Python's urllib as an ordinary client would; the answer, decoded."""
    req = urllib.request.Request(
        url + "/v1/metadata/big", data=data, method="PUT", headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as ex:
        return ex.code, dict(ex.headers), json.loads(ex.read())


def connect(server: ServeProcess) -> socket.socket:
    """A raw TCP connection to the server."""
    parts = urlsplit(server.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mib", [4, 16, 64])
def test_urllib_upload_far_over_the_limit_gets_the_413(
    tmp_path: Path, mib: int
) -> None:
    """urllib PUTting 4-64 MiB reads the 413 problem, not a connection reset."""
    with serving(service_env(tmp_path / "db.sqlite3")) as server:
        began = time.monotonic()
        status, headers, problem = put_with_urllib(
            server.url,
            b"x" * (mib * MIB),
            {"Content-Type": "application/json"},
        )
        took = time.monotonic() - began
        # The server still answers afterwards.
        assert server.request("GET", "/healthz")[0] == 200
    print(f"{mib} MiB upload: 413 after {took:.2f} s")
    assert status == 413
    assert headers["Content-Type"] == "application/problem+json"
    assert problem["status"] == 413
    assert problem["title"] == "Content Too Large"


@pytest.mark.timeout(120)
def test_chunked_upload_over_the_limit_gets_the_413(tmp_path: Path) -> None:
    """A chunked urllib upload of 8 MiB (waitress stops it at 1 MiB) reads the 413."""
    chunks = (b"x" * 65_536 for _ in range(128))
    with serving(service_env(tmp_path / "db.sqlite3")) as server:
        status, _, problem = put_with_urllib(
            server.url,
            chunks,
            {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        )
    assert (status, problem["status"]) == (413, 413)


def send_until_refused(sock: socket.socket, limit: int) -> int:
    """Send zeros until the peer refuses them; returns the bytes sent (or limit)."""
    block = b"\0" * MIB
    sent = 0
    try:
        while sent < limit:
            sock.sendall(block)
            sent += len(block)
    except (BrokenPipeError, ConnectionResetError):
        return sent
    return limit


@pytest.mark.timeout(120)
def test_lingering_close_is_bounded_in_bytes_and_idle_time(tmp_path: Path) -> None:
    """The server discards at most LINGER_MAX_BYTES, and waits at most the idle bound."""
    huge = 8 * LINGER_MAX_BYTES
    head = (
        "PUT /v1/metadata/big HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/json\r\nContent-Length: {huge}\r\n\r\n"
    ).encode()
    with serving(service_env(tmp_path / "db.sqlite3")) as server:
        flood = connect(server)
        idle = connect(server)
        try:
            flood.sendall(head)
            began = time.monotonic()
            sent = send_until_refused(flood, huge)
            flooded = time.monotonic() - began
            idle.sendall(head + b"x" * (2 * MIB))
            answer = idle.recv(65_536)
            time.sleep(LINGER_IDLE_SECONDS + 1.5)
            late = send_until_refused(idle, 64 * MIB)
        finally:
            flood.close()
            idle.close()
        assert server.request("GET", "/healthz")[0] == 200
    print(
        f"flood refused after {sent / MIB:.0f} MiB in {flooded:.1f} s; "
        f"idle connection took {late / MIB:.0f} MiB more after the idle bound"
    )
    assert answer.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert sent < 2 * LINGER_MAX_BYTES
    assert late < 64 * MIB
