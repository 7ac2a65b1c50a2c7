"""Connections: past FD_SETSIZE and the limit, the open-file limit, several addresses."""

from __future__ import annotations

import contextlib
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.helpers import SERVE, ServeProcess, service_env
from tests.mounts import in_private_mounts, private_mounts_available
from tests.reliability.support import Client, serving, with_rlimit

pytestmark = pytest.mark.slow


def connect(server: ServeProcess) -> socket.socket:
    """A raw TCP connection to the server."""
    parts = urlsplit(server.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def answers(sock: socket.socket, timeout: float = 10) -> int:
    """Send GET /healthz on sock; the status of the answer."""
    sock.settimeout(timeout)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65_536)
        assert chunk, f"closed without an answer: {data!r}"
        data += chunk
    return int(data.split(b" ", 2)[1])


def allow_open_files(count: int) -> None:
    """Let this test process hold count files (raise the soft limit), or skip."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        if hard != resource.RLIM_INFINITY and hard < count:
            pytest.skip(f"the hard open-file limit ({hard}) is below {count}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


@contextlib.contextmanager
def open_sockets(server: ServeProcess, count: int) -> Iterator[list[socket.socket]]:
    """count idle connections, closed on the way out."""
    allow_open_files(count + 256)
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            socks.append(connect(server))
        time.sleep(1.0)  # let the server accept what it will
        yield socks
    finally:
        for sock in socks:
            sock.close()


def open_files_limits(pid: int) -> tuple[int, int]:
    """The soft and hard RLIMIT_NOFILE of a running process."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    return soft, hard


def limit_open_files(soft: int, hard: int) -> Callable[[], None]:
    """A preexec_fn that starts the child with these RLIMIT_NOFILE values."""
    return with_rlimit(resource.RLIMIT_NOFILE, soft, hard)


@pytest.mark.timeout(120)
def test_connections_past_fd_setsize_and_the_limit_keep_it_answering(
    tmp_path: Path,
) -> None:
    """1,600 sockets against a limit of 1,500 (fds past 1024): it keeps answering."""
    limit = 1500
    env = service_env(
        tmp_path / "db.sqlite3", connection_limit=limit, channel_timeout=120
    )
    with serving(env) as server, open_sockets(server, limit + 100) as socks:
        assert server.process.poll() is None, server.lines[-5:]
        # Connections it accepted, the newest (fds past 1024) included.
        for index in (0, 1, 500, 1000, 1200, 1400, limit - 10):
            assert answers(socks[index]) == 200, index
        # The 100-odd past the limit wait in the backlog until slots free.
        for sock in socks[:200]:
            sock.close()
        assert answers(socks[-1], timeout=20) == 200
        client = Client(server.url)
        assert client.request("PUT", "/v1/metadata/k", {"value": "v"})[0] == 201
        client.close()
        assert server.stop() == 0
    errors = [line for line in server.lines if line.get("log.level") == "ERROR"]
    assert not errors, errors[:3]


@pytest.mark.timeout(120)
def test_soft_open_file_limit_is_raised_to_fit_the_connections(tmp_path: Path) -> None:
    """Started with a soft limit of 256, serve raises it to hold 1,000 connections."""
    env = service_env(tmp_path / "db.sqlite3", channel_timeout=120)
    with serving(env, preexec_fn=limit_open_files(256, 4096)) as server:
        soft, hard = open_files_limits(server.process.pid)
        ready = next(
            line for line in server.lines if line.get("event.action") == "ready"
        )
        with open_sockets(server, 400) as socks:
            for index in (0, 200, 399):
                assert answers(socks[index]) == 200, index
            client = Client(server.url)
            assert client.request("PUT", "/v1/metadata/k", {"value": "v"})[0] == 201
            client.close()
        assert server.stop() == 0
    print(f"soft limit raised from 256 to {soft} (hard {hard})")
    assert hard == 4096
    assert 1000 < soft <= 4096
    assert ready["open_files_limit"] == soft
    assert ready["connection_limit"] == 1000
    assert not [line for line in server.lines if "accept()" in str(line.get("message"))]


def test_explicit_connection_limit_past_the_hard_limit_is_refused(
    tmp_path: Path,
) -> None:
    """SERVICE_CONNECTION_LIMIT=1000 under a hard limit of 300: exit 2, one line."""
    db = tmp_path / "db.sqlite3"
    env = service_env(db, connection_limit=1000)
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=limit_open_files(300, 300),
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, lines
    assert "SERVICE_CONNECTION_LIMIT=1000" in lines[0]
    assert "is 300" in lines[0]
    assert "Traceback" not in result.stderr
    assert not db.exists()  # refused before anything was opened


@pytest.mark.timeout(120)
def test_default_connection_limit_is_lowered_to_fit_the_hard_limit(
    tmp_path: Path,
) -> None:
    """Under a hard limit of 300 the default limit shrinks; 400 sockets are harmless."""
    env = service_env(tmp_path / "db.sqlite3", channel_timeout=120)
    with serving(env, preexec_fn=limit_open_files(300, 300)) as server:
        ready = next(
            line for line in server.lines if line.get("event.action") == "ready"
        )
        with open_sockets(server, 400) as socks:
            for index in (0, 100, ready["connection_limit"] - 10):
                assert answers(socks[index]) == 200, index
        client = Client(server.url)
        assert client.request("PUT", "/v1/metadata/k", {"value": "v"})[0] == 201
        client.close()
        assert server.stop() == 0
    lowered = [
        line
        for line in server.lines
        if line.get("event.action") == "connection_limit_lowered"
    ]
    print(f"connection limit lowered to {ready['connection_limit']} under 300 files")
    assert len(lowered) == 1
    assert 0 < ready["connection_limit"] < 300
    assert not [line for line in server.lines if "accept()" in str(line.get("message"))]


@pytest.mark.timeout(120)
def test_host_resolving_to_two_addresses_serves_on_both(tmp_path: Path) -> None:
    """SERVICE_HOST=localhost as ::1 and 127.0.0.1: both serve, both logged, clean stop."""
    if not private_mounts_available():
        pytest.skip("needs `unshare -m` to give serve its own /etc/hosts")
    hosts = tmp_path / "hosts"
    hosts.write_text("::1 localhost\n127.0.0.1 localhost\n")  # Debian's and Docker's
    command = in_private_mounts([f"mount --bind {hosts} /etc/hosts"], SERVE)
    env = service_env(tmp_path / "db.sqlite3", host="localhost")
    with serving(env, command=command) as server:
        ready = next(
            line for line in server.lines if line.get("event.action") == "ready"
        )
        urls = ready["urls"]
        hosts_seen = {urlsplit(url).hostname for url in urls}
        for url in urls:
            client = Client(url)
            assert client.request("PUT", f"/v1/metadata/{len(url)}", {"value": url})[
                0
            ] in (200, 201)
            client.close()
        # A request in flight on the IPv6 socket is answered through the drain.
        v6 = next(url for url in urls if "[" in url)
        parts = urlsplit(v6)
        body = b'{"value": "drained"}'
        sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        sock.sendall(
            b"PUT /v1/metadata/drained HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:4]
        )
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        sock.sendall(body[4:])
        answer = sock.recv(65_536)
        sock.close()
        code = server.stop()
    print(f"ready on {urls}")
    assert hosts_seen == {"::1", "127.0.0.1"}
    assert ready["message"] == "ready on " + ", ".join(urls)
    assert answer.startswith(b"HTTP/1.1 201 ")
    assert code == 0, server.lines[-5:]
    assert any(line.get("message") == "database closed" for line in server.lines)
