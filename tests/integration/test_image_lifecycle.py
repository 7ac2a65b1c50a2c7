"""The container's life: restarts keep data, docker stop drains, bad settings exit 2."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import REPO, Docker, one_conversation

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

STOP_GRACE = 10  # docker stop's default: SIGKILL after this many seconds

# Run in a helper container of the same image, with the volume mounted read-only.
INSPECT_DATA = """
import json, os, sqlite3
files = {name: os.path.getsize(os.path.join('/data', name)) for name in sorted(os.listdir('/data'))}
# immutable=1: read the file as it lies, without creating -wal/-shm on a read-only mount.
db = sqlite3.connect('file:/data/service.sqlite3?mode=ro&immutable=1', uri=True)
integrity = [row[0] for row in db.execute('PRAGMA integrity_check')]
db.close()
print(json.dumps({'files': files, 'integrity': integrity}))
"""


def test_data_survives_stop_and_start_on_the_volume(docker: Docker) -> None:
    """A value written before docker stop is served after docker start and by a new container."""
    first = docker.service()
    key = f"persist-{uuid.uuid4().hex[:8]}"
    assert first.request("PUT", f"/v1/metadata/{key}", {"value": "kept"}).status == 201

    assert first.stop() == 0
    first.start_again()
    after_restart = first.request("GET", f"/v1/metadata/{key}")
    assert first.stop() == 0
    second = docker.service(first.volume)
    in_new_container = second.request("GET", f"/v1/metadata/{key}")

    assert (after_restart.status, after_restart.body["value"]) == (200, "kept")
    assert (in_new_container.status, in_new_container.body["value"]) == (200, "kept")


def test_newer_migration_set_applies_only_the_new_file(
    docker: Docker, tmp_path: Path
) -> None:
    """A second container on the same volume with one more migration applies just that file."""
    first = docker.service()
    assert first.request("PUT", "/v1/metadata/before", {"value": "v1"}).status == 201
    shipped = first.request("GET", "/readyz").body["schema_version"]
    assert first.stop() == 0

    folder = tmp_path / "migrations"
    folder.mkdir()
    for file in sorted((REPO / "schema_migrations").glob("*.sql")):
        shutil.copy(file, folder / file.name)
    newer = f"{shipped + 1:04d}_add_audit_log.sql"
    (folder / newer).write_text(
        "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, note TEXT);\n"
    )
    folder.chmod(0o755)  # the service runs as uid 10001
    for file in folder.iterdir():
        file.chmod(0o644)

    second = docker.service(
        first.volume,
        mounts={str(folder): "/migrations"},
        SERVICE_MIGRATIONS_PATH="/migrations",
    )
    ready = second.request("GET", "/readyz")
    applied = [
        json.loads(line)["message"]
        for line in second.logs().splitlines()
        if line.startswith("{") and "applied migration" in line
    ]
    kept = second.request("GET", "/v1/metadata/before")

    assert (ready.status, ready.body["schema_version"]) == (200, shipped + 1)
    assert applied == [f"applied migration {newer}"]
    assert (kept.status, kept.body["value"]) == (200, "v1")


def test_one_conversation_end_to_end(docker: Docker) -> None:
    """In the container: admin makes users and a token, a user converses, pages and searches."""
    admin = "it-admin-" + uuid.uuid4().hex
    one_conversation(docker.service(SERVICE_ADMIN_TOKEN=admin), admin)


def _read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _first_sigterm(docker: Docker, container_id: str, since: int) -> float:
    """When the engine sent the container its first SIGTERM (epoch seconds)."""
    events = docker.client.events(
        since=since,
        until=int(time.time()) + 1,
        filters={"container": container_id, "event": "kill"},
        decode=True,
    )
    try:
        kills = [e for e in events if e["Actor"]["Attributes"].get("signal") == "15"]
    finally:
        events.close()
    assert kills, "the engine recorded no SIGTERM for the container"
    return float(kills[0]["timeNano"]) / 1e9


def test_docker_stop_answers_the_request_in_flight(docker: Docker) -> None:
    """docker stop mid-request: it is answered, exit 0, the WAL is checkpointed, the DB intact.

    The client opens a socket, sends the headers and the first bytes of a PUT body,
    then `docker stop` is issued and the rest of the body trickles in over ~2 s.
    waitress dispatches a request to the app only once its body is complete, so at
    SIGTERM the request is in flight on its connection and reaches the app after the
    signal: it is answered only if shutdown stops accepting but keeps serving started
    requests (and flushes their responses) before the process exits. The engine's
    own "kill" event proves SIGTERM was sent before the body's last byte.
    """
    service = docker.service()
    host, port = service.address()
    key = f"inflight-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"value": "written while stopping " * 8}).encode()
    head = (
        f"PUT /v1/metadata/{key} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    rest = [body[i : i + 20] for i in range(10, len(body), 20)]
    stopped: dict[str, Any] = {}
    since = int(time.time()) - 1

    def stop() -> None:
        began = time.monotonic()
        try:
            stopped["code"] = service.stop(timeout=STOP_GRACE)
        except Exception as ex:
            stopped["error"] = ex
        stopped["seconds"] = time.monotonic() - began

    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(head + body[:10])
        time.sleep(0.3)  # the server has read the headers: the request is in flight
        stopper = threading.Thread(target=stop, daemon=True)
        stopper.start()
        time.sleep(0.5)  # docker sends SIGTERM as soon as the stop call arrives
        try:
            for piece in rest:
                time.sleep(2.0 / len(rest))
                body_done_at = time.time()
                sock.sendall(piece)
            answer, dropped = _read_until_closed(sock), ""
        except OSError as ex:  # the server dropped the connection
            answer, dropped = b"", repr(ex)
    stopper.join(STOP_GRACE + 40)

    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 201 Created", (
        f"in-flight request not answered ({dropped or answer[:300]!r}):\n{service.logs()}"
    )
    assert "error" not in stopped, stopped
    assert stopped["code"] == 0, service.logs()
    assert stopped["seconds"] < STOP_GRACE - 1, stopped
    sigterm_at = _first_sigterm(docker, service.wrapped.id, since)
    assert sigterm_at < body_done_at, (sigterm_at, body_done_at)
    data = json.loads(docker.helper(service.volume, INSPECT_DATA))
    assert data["integrity"] == ["ok"]
    assert data["files"].get("service.sqlite3-wal", 0) == 0, data["files"]
    after = docker.service(service.volume).request("GET", f"/v1/metadata/{key}")
    assert (after.status, after.body["value"]) == (200, json.loads(body)["value"])


def test_invalid_setting_exits_2_with_one_line_naming_it(docker: Docker) -> None:
    """SERVICE_PORT=abc: the container exits 2 and logs one line that names SERVICE_PORT."""
    service = docker.service(wait=False, SERVICE_PORT="abc")

    code = service.wrapped.wait(timeout=60)["StatusCode"]
    lines = [line for line in service.logs().splitlines() if line.strip()]

    assert code == 2
    assert len(lines) == 1, lines
    assert "SERVICE_PORT" in lines[0]
