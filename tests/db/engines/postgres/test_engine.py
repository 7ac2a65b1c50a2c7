"""Starting on PostgreSQL: connection capacity, bad credentials, session settings."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from pony import orm

from db.database import engine_for, open_database
from db.target import PostgresTarget
from tests.helpers import run_cli, service_env, start_serve
from tests.pg import PostgresServer, find_bindir


def pg_env(tmp_path: Path, url: str, **settings: object) -> dict[str, str]:
    """A service environment on the PostgreSQL database url (no SQLite path)."""
    env = service_env(tmp_path / "unused.sqlite3", database_url=url, **settings)
    del env["SERVICE_DATABASE_PATH"]
    return env


@pytest.fixture
def small_server(postgres: PostgresServer) -> Iterator[PostgresServer]:
    """A second server that allows 8 connections (3 of them reserved)."""
    bindir = find_bindir()
    assert bindir is not None
    server = PostgresServer(bindir, max_connections=8).start()
    yield server
    server.stop()


@pytest.mark.slow
def test_too_few_connections_for_the_threads_stops_start_up(
    tmp_path: Path, small_server: PostgresServer
) -> None:
    """SERVICE_THREADS=8 on a server with room for 4: one line naming both, exit 1."""
    url = small_server.create_database("capacity")
    result = run_cli("serve", env=pg_env(tmp_path, url, threads=8))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if '"CRITICAL"' in line]
    assert len(lines) == 1
    assert "max_connections 8" in lines[0]
    assert "SERVICE_THREADS" in lines[0]
    assert small_server.password not in result.stderr + result.stdout
    fits = run_cli("migrate", env=pg_env(tmp_path, url, threads=2))
    assert fits.returncode == 0, fits.stderr


@pytest.mark.slow
def test_capacity_counts_the_connections_of_every_role(
    tmp_path: Path, small_server: PostgresServer
) -> None:
    """An unprivileged role, with another role holding most slots, is refused at start
    with one line counting them; once they are gone, the same start passes."""
    url = small_server.create_database("shared")
    small_server._execute(
        "CREATE ROLE app LOGIN PASSWORD 'app-password-123' NOSUPERUSER NOCREATEDB"
    )
    small_server._execute("ALTER DATABASE shared OWNER TO app")
    app_url = url.replace(f"postgres:{small_server.password}@", "app:app-password-123@")
    assert run_cli("migrate", env=pg_env(tmp_path, app_url)).returncode == 0
    # 8 slots, 3 reserved: 5 for everyone. Another role takes 3 of them; the
    # service (2 threads) needs 4: its start-up connection and 3 more.
    others = [psycopg2.connect(url) for _ in range(3)]
    try:
        refused = run_cli("serve", env=pg_env(tmp_path, app_url, threads=2))
    finally:
        for con in others:
            con.close()
    assert refused.returncode == 1, refused.stderr
    lines = [line for line in refused.stderr.splitlines() if '"CRITICAL"' in line]
    assert len(lines) == 1, refused.stderr
    assert "room for 1 more connection" in lines[0]
    assert "every role" in lines[0]
    assert "app-password-123" not in refused.stderr + refused.stdout
    served = start_serve(pg_env(tmp_path, app_url, threads=2))
    try:
        assert served.request("GET", "/readyz")[0] == 200
    finally:
        assert served.stop() == 0


def test_workers_need_connections_for_every_thread_of_every_worker(
    tmp_path: Path, small_server: PostgresServer
) -> None:
    """SERVICE_THREADS=2 fits a server with room for 4 in one process (3 needed) but
    not in SERVICE_WORKERS=2 (2 x (2 + 2) - 1 = 7): one line naming both settings and
    the count, exit 1, before any worker starts."""
    url = small_server.create_database("workers")
    result = run_cli("serve", env=pg_env(tmp_path, url, threads=2, workers=2))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if '"CRITICAL"' in line]
    assert len(lines) == 1, result.stderr
    assert "7 more" in lines[0]
    assert "SERVICE_WORKERS" in lines[0]
    assert "SERVICE_THREADS" in lines[0]
    assert "worker_started" not in result.stderr
    assert small_server.password not in result.stderr + result.stdout


def test_wrong_password_is_one_line_without_any_password(
    tmp_path: Path, postgres: PostgresServer, pg_url: str
) -> None:
    """A refused login names the server and user in one line; neither password shows."""
    wrong = pg_url.replace(postgres.password, "not-the-password-xyz")
    result = run_cli("serve", env=pg_env(tmp_path, wrong))
    assert result.returncode == 1
    output = result.stderr + result.stdout
    assert "password authentication failed" in output
    assert "not-the-password-xyz" not in output
    assert postgres.password not in output
    assert "Traceback" not in output


def test_serving_never_shows_the_password_in_logs_metrics_or_answers(
    tmp_path: Path, postgres: PostgresServer, pg_url: str
) -> None:
    """A served session (ready, a write, a 404, a bad body, /metrics, shutdown) never
    shows the URL's password: not in a log line, an answer or /metrics."""
    served = start_serve(pg_env(tmp_path, pg_url, admin_token="a" * 32))
    seen: list[str] = []
    try:
        admin = {"Authorization": "Bearer " + "a" * 32}
        calls = [
            ("GET", "/readyz", None, {}),
            ("PUT", "/v1/metadata/k", b'{"value": "v"}', admin),
            ("PUT", "/v1/metadata/k", b'{"value": 1}', admin),
            ("GET", "/v1/metadata/missing", None, admin),
            ("GET", "/metrics", None, {}),
        ]
        statuses = []
        for method, path, body, headers in calls:
            req = urllib.request.Request(
                served.url + path, data=body, method=method, headers=headers
            )
            if body is not None:
                req.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    statuses.append(resp.status)
                    seen.append(resp.read().decode())
            except urllib.error.HTTPError as ex:
                statuses.append(ex.code)
                seen.append(ex.read().decode())
        assert statuses == [200, 201, 422, 404, 200]
        assert "service_http_requests_total" in seen[-1]
    finally:
        code = served.stop()
    assert code == 0
    logged = json.dumps(served.lines)
    assert "ready" in logged
    for text in [logged, *seen]:
        assert postgres.password not in text


def test_write_transactions_set_their_timeouts_and_nothing_outlives_them(
    pg_url: str,
) -> None:
    """A write transaction runs with its lock and statement timeouts (SET LOCAL);
    reads and later sessions run with the server's defaults: nothing is set for
    the session, which a transaction pooler would hand to another client."""
    database = open_database(
        engine=engine_for(
            PostgresTarget(pg_url), lock_timeout=1.5, statement_timeout=7.0
        )
    )
    show = (
        "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
    )
    try:
        for _ in range(2):  # the second round reuses the released connection
            with database.writing():
                assert tuple(database.orm.select(show)[0]) == ("1500ms", "7s")
            with orm.db_session:
                assert tuple(database.orm.select(show)[0]) == ("0", "0")
    finally:
        database.close()
