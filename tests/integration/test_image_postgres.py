"""The image on PostgreSQL: a server the tests start on the host, reached over loopback.

No PostgreSQL image can be pulled here, so the server is tests/pg.py's
(Debian's binaries, SCRAM password auth on 127.0.0.1). The container runs
on the host's network (`--network host`): it reaches that server at
127.0.0.1 with no change to where the server listens or whom it admits,
and the service listens on a free loopback port of its own.
"""

from __future__ import annotations

import json
import uuid

import psycopg2
import pytest

from tests.helpers import LATEST
from tests.integration.harness import Docker, one_conversation
from tests.pg import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

LIST_DATA = "import json, os; print(json.dumps(sorted(os.listdir('/data'))))"


def on_postgres(url: str, **env: str) -> dict[str, str]:
    """The container's settings for url (the image's SQLite path blanked out)."""
    return {"SERVICE_DATABASE_URL": url, **env}  # the URL alone switches the image


def test_image_serves_a_conversation_from_postgres(docker: Docker, pg_url: str) -> None:
    """Ready at the newest version; the conversation's rows are in PostgreSQL, /data stays empty."""
    admin = "it-admin-" + uuid.uuid4().hex
    service = docker.service(
        host_network=True, **on_postgres(pg_url, SERVICE_ADMIN_TOKEN=admin)
    )

    ready = service.request("GET", "/readyz")
    one_conversation(service, admin)

    assert ready.status == 200, ready.body
    assert (ready.body["schema_version"], ready.body["pending"]) == (LATEST, [])
    con = psycopg2.connect(pg_url)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT handle FROM users ORDER BY handle")
            assert cur.fetchall() == [("ann",), ("bob",)]
            cur.execute("SELECT count(*) FROM messages")
            assert cur.fetchone() == (3,)
            cur.execute("SELECT max(version) FROM schema_migrations")
            assert cur.fetchone() == (LATEST,)
    finally:
        con.close()
    assert json.loads(docker.helper(service.volume, LIST_DATA)) == []


def test_docker_stop_exits_0_and_the_logs_never_hold_the_password(
    docker: Docker, pg_url: str, postgres: PostgresServer
) -> None:
    """At DEBUG, through start, a write and docker stop: exit 0, the URL only as ***."""
    service = docker.service(
        host_network=True, **on_postgres(pg_url, SERVICE_LOG_LEVEL="DEBUG")
    )
    written = service.request("PUT", "/v1/metadata/on-postgres", {"value": "kept"})

    code = service.stop()
    logs = service.logs()
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    ready = next(line for line in lines if line.get("event.action") == "ready")

    assert written.status == 201, written.body
    assert code == 0, logs
    assert postgres.password not in logs
    assert ready["database"] == postgres.url(pg_url.rsplit("/", 1)[1]).replace(
        f":{postgres.password}@", ":***@"
    )
    messages = [line["message"] for line in lines]
    assert messages[-3:] == [
        "received SIGTERM; draining",
        "stopped accepting; in-flight requests drained",
        "database closed",
    ], messages


def test_a_wrong_password_exits_1_with_one_line_naming_the_server(
    docker: Docker, pg_url: str, postgres: PostgresServer
) -> None:
    """Refused by the server: exit 1, one line with the URL redacted, neither password shown."""
    wrong = "wrong-" + uuid.uuid4().hex
    url = pg_url.replace(f":{postgres.password}@", f":{wrong}@")
    service = docker.service(wait=False, host_network=True, **on_postgres(url))

    code = service.wrapped.wait(timeout=60)["StatusCode"]
    lines = [line for line in service.logs().splitlines() if line.strip()]

    assert code == 1, lines
    assert len(lines) == 1, lines
    assert "postgres:***@127.0.0.1" in lines[0]
    assert "password authentication failed" in lines[0]
    assert wrong not in lines[0]
    assert postgres.password not in lines[0]
