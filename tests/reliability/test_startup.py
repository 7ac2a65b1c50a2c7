"""Start-up: eight serves racing to migrate one file; a signal mid-migration."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.helpers import copy_migrations, launch_serve, service_env, wait_ready
from tests.reliability.support import (
    SHIPPED,
    Client,
    db_rows,
    integrity,
    kill,
    serving,
    wait_exit,
)

pytestmark = pytest.mark.slow

PROCESSES = 8
FIRST = SHIPPED + 1  # the table `ran`
NEWEST = SHIPPED + 80


def numbered_migrations() -> dict[str, str]:
    """Files FIRST..NEWEST; each records that it ran in a table without a key.

    `ran` has no UNIQUE constraint, so a file applied twice would leave two
    rows instead of failing: double application is counted, not hidden.
    """
    files = {f"{FIRST:04d}_ran.sql": "CREATE TABLE ran (version INTEGER NOT NULL);\n"}
    for v in range(FIRST + 1, NEWEST + 1):
        files[f"{v:04d}_t{v}.sql"] = (
            f"CREATE TABLE t{v} (id INTEGER PRIMARY KEY);\n"
            f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            f"WHERE x < 2000) INSERT INTO t{v} (id) SELECT x FROM c;\n"
            f"INSERT INTO ran (version) VALUES ({v});\n"
        )
    return files


@pytest.mark.timeout(120)
def test_eight_processes_start_together_and_apply_each_file_once(
    tmp_path: Path,
) -> None:
    """Eight serves launched at once on a fresh file: all ready, each file run once."""
    folder = copy_migrations(tmp_path / "mig", numbered_migrations())
    db = tmp_path / "db.sqlite3"
    env = service_env(db, migrations_path=folder, threads=2)
    started = time.monotonic()
    # Launch all before waiting for any, so that their migrations race.
    servers = [launch_serve(env) for _ in range(PROCESSES)]
    try:
        for server in servers:
            wait_ready(server, timeout=90)
        print(f"{PROCESSES} processes ready in {time.monotonic() - started:.1f} s")
        ports = {server.url for server in servers}
        assert len(ports) == PROCESSES
        for server in servers:
            client = Client(server.url)
            status, _, ready = client.json("GET", "/readyz")
            assert (status, ready["schema_version"], ready["pending"]) == (
                200,
                NEWEST,
                [],
            )
            # Each process can write the shared file once migrated.
            status, _, _ = client.json(
                "PUT", f"/v1/metadata/from-{server.process.pid}", {"value": "x"}
            )
            assert status == 201
            client.close()
        codes = [server.stop() for server in servers]
    finally:
        for server in servers:
            kill(server)
    assert codes == [0] * PROCESSES
    assert integrity(db) == "ok"
    assert db_rows(db, "SELECT version FROM schema_migrations ORDER BY version") == [
        (v,) for v in range(1, NEWEST + 1)
    ]
    assert db_rows(
        db, "SELECT version, count(*) FROM ran GROUP BY version ORDER BY version"
    ) == [(v, 1) for v in range(FIRST + 1, NEWEST + 1)]
    assert db_rows(db, f"SELECT count(*) FROM t{NEWEST}") == [(2000,)]
    assert db_rows(db, "SELECT count(*) FROM schema_migrations_log") == [(0,)]
    assert db_rows(db, "SELECT count(*) FROM app_metadata") == [(PROCESSES,)]
    applied_by = [
        sum(
            1
            for line in server.lines
            if str(line.get("message", "")).startswith("applied migration")
        )
        for server in servers
    ]
    print(f"files applied per process: {applied_by}")
    assert sum(applied_by) == NEWEST


def slow_migrations() -> dict[str, str]:
    """A quick file, then one whose six statements take a few seconds together."""
    fill = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
        "WHERE x < 300000) INSERT INTO slow (v) SELECT hex(randomblob(16)) FROM c;\n"
    )
    return {
        f"{FIRST:04d}_quick.sql": "CREATE TABLE quick (id INTEGER PRIMARY KEY);\n",
        f"{FIRST + 1:04d}_slow.sql": "CREATE TABLE slow (id INTEGER PRIMARY KEY, v TEXT);\n"
        + fill * 6,
    }


def wait_for_writer(db: Path, version: int, timeout: float = 60) -> None:
    """Wait until version is applied and another write transaction is open."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        applied = None
        try:
            con = sqlite3.connect(db, timeout=0, isolation_level=None)
            try:
                applied = con.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
                ).fetchone()
                if applied:
                    con.execute("BEGIN IMMEDIATE")
                    con.execute("ROLLBACK")
            finally:
                con.close()
        except sqlite3.OperationalError as ex:
            if "locked" in str(ex) and applied:
                return
        time.sleep(0.02)
    raise AssertionError(f"no migration after {version} began in {timeout} s")


@pytest.mark.timeout(120)
def test_sigterm_during_a_migration_exits_143_with_one_line(tmp_path: Path) -> None:
    """SIGTERM mid-migration: one log line, exit 143, the file rolled back whole."""
    folder = copy_migrations(tmp_path / "mig", slow_migrations())
    db = tmp_path / "db.sqlite3"
    server = launch_serve(service_env(db, migrations_path=folder))
    try:
        wait_for_writer(db, FIRST)
        server.process.send_signal(signal.SIGTERM)
        code = wait_exit(server.process, timeout=30)
        lines = server.collect()
    finally:
        kill(server)
    interrupted = [line for line in lines if line.get("event.action") == "interrupted"]
    print(f"exit {code}: {interrupted}")
    assert code == 143, lines
    assert len(interrupted) == 1, lines
    assert "SIGTERM" in interrupted[0]["message"]
    assert not [line for line in lines if "Traceback" in str(line)]
    assert not [line for line in lines if line.get("event.action") == "ready"]
    assert integrity(db) == "ok"
    assert db_rows(db, "SELECT max(version) FROM schema_migrations") == [(FIRST,)]
    assert db_rows(db, "SELECT count(*) FROM sqlite_master WHERE name = 'slow'") == [
        (0,)
    ]
    # The next start applies the interrupted file from the beginning.
    with serving(service_env(db, migrations_path=folder), timeout=90) as again:
        assert again.request("GET", "/readyz")[2]["schema_version"] == FIRST + 1
        assert again.stop() == 0
