"""The runner's PostgreSQL rules on a real server: lock, timeouts, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from db import migrate as m
from db.engines.postgres import connection
from db.engines.postgres import locks as pg_lock
from db.errors import MigrationError
from db.target import PostgresTarget
from tests.helpers import LATEST, REPO, SHIPPED, copy_migrations

V2, V3 = LATEST + 1, LATEST + 2
P2, P3 = f"{V2:04d}", f"{V3:04d}"


def connect(url: str) -> Any:
    """An autocommit connection for the test's own queries."""
    con = psycopg2.connect(url)
    con.autocommit = True
    return con


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of one query."""
    con = connect(url)
    try:
        cur = con.cursor()
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()] if cur.description else []
    finally:
        con.close()


def history(url: str) -> list[int]:
    """Versions in the history table."""
    return [
        r[0]
        for r in query(url, "SELECT version FROM schema_migrations ORDER BY version")
    ]


def env_for(url: str, folder: Path) -> dict[str, str]:
    """A clean environment for a service process on url."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    env["SERVICE_DATABASE_URL"] = url
    env["SERVICE_MIGRATIONS_PATH"] = str(folder)
    return env


def migrate_process(url: str, folder: Path) -> subprocess.Popen[str]:
    """Start `python -m service migrate` without waiting for it."""
    return subprocess.Popen(
        [sys.executable, "-m", "service", "migrate"],
        env=env_for(url, folder),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_eight_processes_starting_at_once_apply_each_file_once(
    pg_url: str, tmp_path: Path
) -> None:
    """8 migrate processes on one fresh database: all succeed, each file runs exactly once."""
    extra = {
        f"{v:04d}_t{v}.sql": f"CREATE TABLE t{v} (id INTEGER PRIMARY KEY);\n"
        f"INSERT INTO t{v} (id) VALUES ({v});\n"
        for v in range(V2, 25)
    }
    folder = copy_migrations(tmp_path / "mig", extra)
    processes = [migrate_process(pg_url, folder) for _ in range(8)]
    outputs = [p.communicate(timeout=180) for p in processes]
    assert [p.returncode for p in processes] == [0] * 8, outputs
    assert history(pg_url) == SHIPPED + list(range(V2, 25))
    for v in range(V2, 25):
        assert query(pg_url, f"SELECT id FROM t{v}") == [(v,)]
    applied = sum(int(out.split()[1]) for out, _ in outputs)
    assert applied == len(SHIPPED) + len(
        range(V2, 25)
    )  # each by exactly one of the eight
    assert query(pg_url, "SELECT count(*) FROM schema_migrations_log") == [(0,)]


def test_killed_runner_leaves_nothing_half_applied(pg_url: str, tmp_path: Path) -> None:
    """kill -9 in the middle of a file: no trace of it, the lock is free, the next run finishes."""
    folder = copy_migrations(tmp_path / "mig")
    target = PostgresTarget(pg_url)
    m.migrate(target, m.discover(folder, "postgres"))
    query(pg_url, "CREATE TABLE control (seconds DOUBLE PRECISION)")
    query(pg_url, "INSERT INTO control VALUES (60)")
    (folder / f"{P2}_slow.sql").write_text(
        "CREATE TABLE big (id INTEGER PRIMARY KEY);\n"
        "INSERT INTO big SELECT generate_series(1, 1000);\n"
        "SELECT pg_sleep((SELECT seconds FROM control));\n"
    )
    process = migrate_process(pg_url, folder)
    deadline = time.monotonic() + 60
    while not query(
        pg_url,
        "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep((SELECT%'",
    ):
        assert time.monotonic() < deadline, (
            "the runner never reached the slow statement"
        )
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)

    query(pg_url, "UPDATE control SET seconds = 0")
    started = time.monotonic()
    state = m.migrate(target, m.discover(folder, "postgres"), lock_timeout=30)
    assert state.pending == []
    assert time.monotonic() - started < 15  # neither the lock nor the table stayed held
    assert history(pg_url) == [*SHIPPED, V2]
    assert query(pg_url, "SELECT count(*) FROM big") == [(1000,)]


def test_the_lock_is_polled_and_its_holder_named(pg_url: str, tmp_path: Path) -> None:
    """Another run holding the advisory lock: this one waits, then gives up naming the holder."""
    folder = copy_migrations(tmp_path / "mig")
    holder = connection.connect(PostgresTarget(pg_url), "holder")
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (pg_lock.lock_key(holder),))
        started = time.monotonic()
        with pytest.raises(
            TimeoutError,
            match=r"held by pid \d+ \(service-foundation migrations holder",
        ):
            m.migrate(
                PostgresTarget(pg_url), m.discover(folder, "postgres"), lock_timeout=1.0
            )
        assert 1.0 <= time.monotonic() - started < 5
    finally:
        holder.close()
    m.migrate(PostgresTarget(pg_url), m.discover(folder, "postgres"), lock_timeout=5.0)
    assert history(pg_url) == SHIPPED


def test_lock_timeout_rolls_back_and_names_the_cause(
    pg_url: str, tmp_path: Path
) -> None:
    """A table another transaction holds: the file gives up after lock_timeout, retried, no trace."""
    folder = copy_migrations(tmp_path / "mig")
    target = PostgresTarget(pg_url)
    m.migrate(target, m.discover(folder, "postgres"))
    (folder / f"{P2}_note.sql").write_text(
        "-- migrate: lock_timeout=200ms\n"
        "CREATE TABLE marker (id INTEGER);\n"
        'ALTER TABLE "app_metadata" ADD COLUMN "note" TEXT;\n'
    )
    blocker = connect(pg_url)
    blocker.autocommit = False
    try:
        blocker.cursor().execute("LOCK TABLE app_metadata IN ACCESS SHARE MODE")
        with pytest.raises(
            MigrationError, match=r"waited longer than lock_timeout \(200ms\)"
        ):
            m.migrate(target, m.discover(folder, "postgres"))
        assert "marker" not in {
            r[0] for r in query(pg_url, "SELECT tablename FROM pg_tables")
        }
    finally:
        blocker.rollback()
        blocker.close()
    m.migrate(target, m.discover(folder, "postgres"))
    assert history(pg_url) == [*SHIPPED, V2]


def test_lock_released_during_the_retries_lets_the_file_through(
    pg_url: str, tmp_path: Path
) -> None:
    """A short blocker: the first attempt times out and rolls back, a retry applies the file."""
    folder = copy_migrations(tmp_path / "mig")
    target = PostgresTarget(pg_url)
    m.migrate(target, m.discover(folder, "postgres"))
    (folder / f"{P2}_note.sql").write_text(
        '-- migrate: lock_timeout=300ms\nALTER TABLE "app_metadata" ADD COLUMN "note" TEXT;\n'
    )
    blocker = connect(pg_url)
    blocker.autocommit = False
    blocker.cursor().execute("LOCK TABLE app_metadata IN ACCESS SHARE MODE")
    release = threading.Timer(0.6, lambda: (blocker.rollback(), blocker.close()))
    release.start()
    try:
        m.migrate(target, m.discover(folder, "postgres"))
    finally:
        release.join()
    assert history(pg_url) == [*SHIPPED, V2]


def test_statement_timeout_from_the_header(pg_url: str, tmp_path: Path) -> None:
    """statement_timeout=200ms stops a slow statement; the file leaves no trace."""
    folder = copy_migrations(
        tmp_path / "mig",
        {
            f"{P2}_slow.sql": "-- migrate: statement_timeout=200ms\n"
            "CREATE TABLE marker (id INTEGER);\nSELECT pg_sleep(3);\n"
        },
    )
    with pytest.raises(MigrationError, match="statement timeout"):
        m.migrate(PostgresTarget(pg_url), m.discover(folder, "postgres"))
    assert history(pg_url) == SHIPPED
    assert query(pg_url, "SELECT to_regclass('marker') IS NULL") == [(True,)]


def test_concurrent_index_runs_outside_a_transaction(
    pg_url: str, tmp_path: Path
) -> None:
    """transaction=off: CREATE INDEX CONCURRENTLY applies, the index is valid, the version recorded."""
    folder = copy_migrations(
        tmp_path / "mig",
        {
            f"{P2}_ix.postgres.sql": "-- migrate: transaction=off lock_timeout=10s\n"
            'CREATE INDEX CONCURRENTLY IF NOT EXISTS "ix_meta_value" ON "app_metadata" ("value");\n',
            f"{P2}_ix.sqlite.sql": 'CREATE INDEX "ix_meta_value" ON "app_metadata" ("value");\n',
        },
    )
    m.migrate(PostgresTarget(pg_url), m.discover(folder, "postgres"))
    assert history(pg_url) == [*SHIPPED, V2]
    assert query(
        pg_url,
        "SELECT x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "WHERE c.relname = 'ix_meta_value'",
    ) == [(True,)]


def test_failed_concurrent_index_is_rebuilt_by_the_next_run(
    pg_url: str, tmp_path: Path
) -> None:
    """A unique CIC that fails leaves an INVALID index; once the data is fixed the next run rebuilds it."""
    folder = copy_migrations(tmp_path / "mig")
    target = PostgresTarget(pg_url)
    m.migrate(target, m.discover(folder, "postgres"))
    query(
        pg_url,
        "INSERT INTO app_metadata VALUES ('a', 'same', now()), ('b', 'same', now())",
    )
    (folder / f"{P2}_ux.postgres.sql").write_text(
        "-- migrate: transaction=off\n"
        'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "ux_meta_value" ON "app_metadata" ("value");\n'
    )
    (folder / f"{P2}_ux.sqlite.sql").write_text(
        'CREATE UNIQUE INDEX "ux_meta_value" ON "app_metadata" ("value");\n'
    )
    with pytest.raises(MigrationError, match="INVALID index ux_meta_value"):
        m.migrate(target, m.discover(folder, "postgres"))
    assert history(pg_url) == SHIPPED
    valid = (
        "SELECT x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "WHERE c.relname = 'ux_meta_value'"
    )
    assert query(pg_url, valid) == [(False,)]

    query(pg_url, "DELETE FROM app_metadata WHERE key = 'b'")
    m.migrate(target, m.discover(folder, "postgres"))
    assert history(pg_url) == [*SHIPPED, V2]
    assert query(pg_url, valid) == [(True,)]


def test_open_database_on_postgres_runs_its_halves_and_checks_the_schema(
    pg_url: str, tmp_path: Path
) -> None:
    """Start-up on PostgreSQL applies the .postgres.sql halves and its schema check passes."""
    from db.database import open_database
    from db.engines.postgres.engine import PostgresEngine

    folder = copy_migrations(tmp_path / "mig")
    database = open_database(
        engine=PostgresEngine(PostgresTarget(pg_url)), migrations_source=folder
    )
    database.close()
    assert query(pg_url, "SELECT DISTINCT dialect FROM schema_migrations") == [
        ("postgres",)
    ]
    assert history(pg_url) == SHIPPED
