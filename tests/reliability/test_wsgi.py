"""service.wsgi under other WSGI servers: JSON logs, and the database closed at exit."""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, service_env
from tests.reliability.support import Client, db_rows, integrity, wait_exit

pytestmark = pytest.mark.slow

# The standard library's WSGI server: one request at a time, then exit.
WSGIREF = """
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server
from service.wsgi import app

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
print(server.server_port, flush=True)
for _ in range(int(sys.argv[1])):
    server.handle_request()
server.server_close()
"""


def sidecars(db: Path) -> list[str]:
    """The -wal and -shm files left beside db."""
    return sorted(
        p.name for p in db.parent.iterdir() if p.name.endswith(("-wal", "-shm"))
    )


def json_lines(stderr: str) -> list[dict[str, Any]]:
    """The JSON objects among stderr's lines."""
    out = []
    for line in stderr.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


@pytest.mark.timeout(60)
def test_wsgiref_logs_json_and_closes_the_database_at_exit(tmp_path: Path) -> None:
    """Under wsgiref: JSON access lines, and at exit 'database closed', no -wal/-shm."""
    db = tmp_path / "db.sqlite3"
    process = subprocess.Popen(
        [sys.executable, "-c", WSGIREF, "3"],
        env=service_env(db),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    port = int(process.stdout.readline())
    client = Client(f"http://127.0.0.1:{port}")
    assert client.request("PUT", "/v1/metadata/k", {"value": "v"})[0] == 201
    client.close()
    assert client.request("GET", "/v1/metadata/k")[0] == 200
    client.close()
    assert client.request("GET", "/healthz")[0] == 200
    client.close()
    code = wait_exit(process, timeout=30)
    _, stderr = process.communicate()
    lines = json_lines(stderr)
    assert code == 0, stderr
    access = [line for line in lines if line.get("log.logger") == "service.access"]
    assert [
        (line["http.request.method"], line["http.response.status_code"])
        for line in access
    ] == [
        ("PUT", 201),
        ("GET", 200),
        ("GET", 200),
    ]
    assert any(line.get("message") == "database closed" for line in lines), stderr
    assert sidecars(db) == []
    assert db_rows(db, "SELECT value FROM app_metadata") == [("v",)]


def test_bad_setting_stops_the_wsgi_import_with_one_line(tmp_path: Path) -> None:
    """A bad setting: importing service.wsgi exits 2 with one line, no traceback."""
    result = subprocess.run(
        [sys.executable, "-c", "import service.wsgi"],
        env=service_env(tmp_path / "db.sqlite3", threads="0"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "SERVICE_THREADS" in result.stderr


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(120)
def test_gunicorn_workers_log_json_and_checkpoint_at_shutdown(tmp_path: Path) -> None:
    """gunicorn, 2 gthread workers: JSON logs, writes kept, no -wal/-shm after SIGTERM."""
    if importlib.util.find_spec("gunicorn") is None:
        pytest.skip("gunicorn is not installed (pip install gunicorn)")
    db = tmp_path / "db.sqlite3"
    # Migrate first, so the two workers do not race to create the file.
    migrate = subprocess.run(
        [sys.executable, "-m", "service", "migrate"],
        env=service_env(db),
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    assert migrate.returncode == 0
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "service.wsgi:app",
        ],
        env=service_env(db),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = Client(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            try:
                client.request("GET", "/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn never answered"
                time.sleep(0.2)
        for n in range(40):
            status, _, _ = client.request("PUT", f"/v1/metadata/g{n}", {"value": "x"})
            assert status == 201
            client.close()  # spread the requests over both workers
        assert sidecars(db)  # the workers hold the WAL open while serving
        process.send_signal(signal.SIGTERM)
        code = wait_exit(process, timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    _, stderr = process.communicate()
    lines = json_lines(stderr)
    closed = [line for line in lines if line.get("message") == "database closed"]
    access = [line for line in lines if line.get("log.logger") == "service.access"]
    print(
        f"gunicorn exit {code}; {len(access)} JSON access lines; {len(closed)} closes"
    )
    assert code == 0, stderr[-3000:]
    assert len(closed) == 2, stderr[-3000:]  # one per worker
    assert len(access) >= 41
    assert sidecars(db) == []
    assert integrity(db) == "ok"
    assert db_rows(db, "SELECT count(*) FROM app_metadata") == [(40,)]
