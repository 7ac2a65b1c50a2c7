"""Eight serve processes racing to migrate one fresh database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import copy_migrations, launch_serve, service_env, wait_ready
from tests.reliability.support import SHIPPED, Client, db_rows, integrity, kill

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
            if str(line.get("msg", "")).startswith("applied migration")
        )
        for server in servers
    ]
    print(f"files applied per process: {applied_by}")
    assert sum(applied_by) == NEWEST
