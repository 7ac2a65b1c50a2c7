"""A real `serve` process: ready line, graceful SIGTERM, clean database on exit."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.helpers import LATEST, ServeProcess, service_env, start_serve

pytestmark = pytest.mark.slow


def wal_size(db_path: Path) -> int:
    """Size of the -wal file, 0 when absent."""
    wal = db_path.with_name(db_path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def open_socket(server: ServeProcess) -> socket.socket:
    """A raw TCP connection to the server."""
    parts = urlsplit(server.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Read one whole HTTP response (the server closes or sends Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body


def wait_for_write_in_worker(server: ServeProcess, timeout: float = 10) -> None:
    """Wait until a worker took the write lock (then waits on SQLite's busy handler)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts = urlsplit(server.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            sock.sendall(
                b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            _, body = read_response(sock)
        if b"service_db_write_lock_wait_seconds_count 1.0" in body:
            return
        time.sleep(0.05)
    raise AssertionError("the PUT never reached a worker")


def test_ready_line_names_url_and_schema(tmp_path: Path) -> None:
    """serve logs one JSON ready line with its URL and schema version, then serves."""
    server = start_serve(service_env(tmp_path / "db.sqlite3"))
    try:
        ready = [line for line in server.lines if line.get("event.action") == "ready"]
        assert len(ready) == 1
        assert ready[0]["schema_version"] == LATEST
        assert ready[0]["url.full"].startswith("http://127.0.0.1:")
        assert server.request("GET", "/healthz")[0] == 200
    finally:
        assert server.stop() == 0


def test_sigterm_answers_request_waiting_in_a_worker(tmp_path: Path) -> None:
    """SIGTERM while a worker waits for the write lock: the PUT still gets its 201, exit 0, WAL truncated."""
    db_path = tmp_path / "db.sqlite3"
    server = start_serve(service_env(db_path))
    holder = sqlite3.connect(db_path, isolation_level=None, timeout=5)
    holder.execute(
        "BEGIN IMMEDIATE"
    )  # the PUT's worker now waits in SQLite's busy handler
    result: dict[str, object] = {}

    def client() -> None:
        result["answer"] = server.request(
            "PUT", "/v1/metadata/in-flight", {"value": "kept"}
        )

    thread = threading.Thread(target=client)
    try:
        thread.start()
        wait_for_write_in_worker(server)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # the server is draining now, the request still waiting
        assert server.process.poll() is None
        holder.execute("COMMIT")
        holder.close()
        thread.join(timeout=30)
        # No second SIGTERM: one landing while the interpreter finalizes (its
        # handlers reset to the default) would kill the process it is testing.
        code = server.process.wait(timeout=30)
        server.stop()  # exited: reaps, reads the rest of the log, sends nothing
    finally:
        if server.process.poll() is None:
            server.process.kill()
    status, _, body = result["answer"]  # type: ignore[misc]
    assert status == 201
    assert body["value"] == "kept"
    assert code == 0, "\n".join(map(str, server.lines))
    assert wal_size(db_path) == 0
    con = sqlite3.connect(db_path)
    assert con.execute(
        "SELECT value FROM app_metadata WHERE key = 'in-flight'"
    ).fetchone() == ("kept",)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()
    closed = [line for line in server.lines if line.get("message") == "database closed"]
    assert closed
    assert closed[0]["checkpoint"]["busy"] == 0


def test_sigterm_waits_for_a_body_still_arriving(tmp_path: Path) -> None:
    """A request whose body is mid-upload at SIGTERM is read to the end and answered."""
    db_path = tmp_path / "db.sqlite3"
    server = start_serve(service_env(db_path))
    body = json.dumps({"value": "slow upload"}).encode()
    sock = open_socket(server)
    try:
        sock.sendall(
            b"PUT /v1/metadata/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:5]
        )
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(body[5:])
        status, answer = read_response(sock)
    finally:
        sock.close()
    assert status == 201
    assert json.loads(answer)["value"] == "slow upload"
    assert server.stop() == 0


def test_idle_connections_do_not_delay_shutdown(tmp_path: Path) -> None:
    """Open keep-alive connections with no request are closed at once on SIGTERM."""
    server = start_serve(service_env(tmp_path / "db.sqlite3", shutdown_timeout=30))
    idle = [open_socket(server) for _ in range(3)]
    try:
        time.sleep(0.2)
        started = time.monotonic()
        code = server.stop(signal.SIGINT)
        elapsed = time.monotonic() - started
    finally:
        for sock in idle:
            sock.close()
    assert code == 0, "\n".join(map(str, server.lines))
    assert (
        elapsed < 15
    )  # far below the 30 s drain limit: idle sockets were not waited for


def test_protocol_errors_from_waitress_are_problems(tmp_path: Path) -> None:
    """Errors waitress answers itself (here: oversized headers) are problem+json too."""
    server = start_serve(service_env(tmp_path / "db.sqlite3"))
    sock = open_socket(server)
    try:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
            + b"a" * 300_000
            + b"\r\n\r\n"
        )
        status, body = read_response(sock)
    finally:
        sock.close()
        assert server.stop() == 0
    assert 400 <= status < 500
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["title"]


def test_sighup_drains_like_sigterm(tmp_path: Path) -> None:
    """SIGHUP: the request in flight is answered, then exit 0 with the WAL checkpointed."""
    db_path = tmp_path / "db.sqlite3"
    server = start_serve(service_env(db_path))
    body = json.dumps({"value": "during hangup"}).encode()
    sock = open_socket(server)
    try:
        sock.sendall(
            b"PUT /v1/metadata/hup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:5]
        )
        time.sleep(0.3)
        server.process.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert server.process.poll() is None  # still draining
        sock.sendall(body[5:])
        status, _ = read_response(sock)
    finally:
        sock.close()
    code = server.stop()
    assert status == 201
    assert code == 0, "\n".join(map(str, server.lines))
    assert any(
        line.get("message") == "received SIGHUP; draining" for line in server.lines
    )
    assert any(line.get("message") == "database closed" for line in server.lines)
    assert wal_size(db_path) == 0


def test_repeated_sigterm_through_shutdown_still_exits_0(tmp_path: Path) -> None:
    """SIGTERM every millisecond from the first until the process is gone: a clean
    shutdown and exit 0, never killed by a late one during interpreter teardown."""
    server = start_serve(service_env(tmp_path / "db.sqlite3"))
    process = server.process
    sent = 0
    deadline = time.monotonic() + 20
    while process.poll() is None and time.monotonic() < deadline:
        try:
            process.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            break
        sent += 1
        time.sleep(0.001)
    code = server.stop()
    assert sent > 1
    assert code == 0
    assert any(line.get("message") == "database closed" for line in server.lines)
