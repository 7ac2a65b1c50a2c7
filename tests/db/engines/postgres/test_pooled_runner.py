"""The runner through a transaction-pooling pgbouncer: its lock, its files, its reads.

Nothing the runner relies on may be session state: the pooler gives each
transaction whichever server session is free, so a session advisory lock
or a session SET lands on a session the next statement may not reach.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg2
import pytest

from db import migrate as m
from db.database import engine_for, open_database
from db.engines.postgres import connection
from db.errors import MigrationError, StartupError
from db.target import PostgresTarget
from tests.helpers import LATEST, MIGRATIONS, REPO, SHIPPED, copy_migrations
from tests.pg import PostgresServer
from tests.pgbouncer import PgBouncer

V2 = LATEST + 1


def rows(target: PostgresTarget, sql: str) -> list[tuple[Any, ...]]:
    """Rows of one statement on a connection of its own to target (autocommit).

    Targets, not URLs, cross function calls here: their repr hides the
    password, which a failing test's traceback would otherwise show.
    """
    con = psycopg2.connect(target.url)
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
    finally:
        con.close()


def advisory_locks(direct: PostgresTarget) -> list[tuple[Any, ...]]:
    """Every advisory lock the server holds, for any session."""
    return rows(direct, "SELECT pid, granted FROM pg_locks WHERE locktype = 'advisory'")


def history(direct: PostgresTarget) -> list[int]:
    """The applied versions."""
    return [
        r[0] for r in rows(direct, "SELECT version FROM schema_migrations ORDER BY 1")
    ]


@pytest.fixture
def urls(pg_url: str, pgbouncer: PgBouncer) -> tuple[PostgresTarget, PostgresTarget]:
    """(direct, pooled) targets of this test's own empty database."""
    name = urlsplit(pg_url).path.lstrip("/")
    return PostgresTarget(pg_url), PostgresTarget(pgbouncer.url(name))


def test_a_pooled_connection_is_told_from_a_direct_one(
    urls: tuple[PostgresTarget, PostgresTarget],
) -> None:
    """The pid the pooler reports is not the server session's; connected directly it is."""
    direct, pooled = urls
    for target, behind in ((direct, False), (pooled, True)):
        con = connection.connect(target, "probe")
        try:
            assert connection.pooled(con) is behind
        finally:
            con.close()


def test_the_run_lock_holds_through_the_pooler(
    urls: tuple[PostgresTarget, PostgresTarget], tmp_path: Path
) -> None:
    """A run holding the lock through the pooler keeps a second run out; none is left."""
    direct, pooled = urls
    folder = copy_migrations(tmp_path / "mig")
    first = m.backend_for(pooled)
    with first.session(5.0):
        second = m.backend_for(pooled)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="held by pid"), second.session(1.0):
            pass
        assert time.monotonic() - started >= 1.0
    m.migrate(pooled, m.discover(folder, "postgres"), lock_timeout=5)
    assert advisory_locks(direct) == []


def test_a_killed_runner_leaves_no_lock_behind_the_pooler(
    urls: tuple[PostgresTarget, PostgresTarget], tmp_path: Path
) -> None:
    """kill -9 mid-file through the pooler: no lock survives; the next run finishes at once."""
    direct, pooled = urls
    folder = copy_migrations(tmp_path / "mig")
    m.migrate(pooled, m.discover(folder, "postgres"))
    rows(direct, "CREATE TABLE control (seconds DOUBLE PRECISION)")
    rows(direct, "INSERT INTO control VALUES (60)")
    (folder / f"{V2:04d}_slow.sql").write_text(
        "CREATE TABLE big (id INTEGER PRIMARY KEY);\n"
        "SELECT pg_sleep((SELECT seconds FROM control));\n"
    )
    env = {"SERVICE_DATABASE_URL": pooled.url, "SERVICE_MIGRATIONS_PATH": str(folder)}
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "migrate"],
        env={**env, "PATH": "/usr/bin:/bin"},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not rows(
        direct, "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep((%'"
    ):
        assert process.poll() is None, "the runner ended before the slow statement"
        assert time.monotonic() < deadline, (
            "the runner never reached the slow statement"
        )
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    rows(direct, "UPDATE control SET seconds = 0")
    started = time.monotonic()
    state = m.migrate(pooled, m.discover(folder, "postgres"), lock_timeout=30)
    assert state.pending == []
    assert time.monotonic() - started < 15
    assert advisory_locks(direct) == []
    assert history(direct) == [*SHIPPED, V2]


def test_read_only_reads_leave_no_read_only_session_behind(
    urls: tuple[PostgresTarget, PostgresTarget], tmp_path: Path
) -> None:
    """The runner's read-only reads through the pooler leave every server session writable."""
    _, pooled = urls
    folder = copy_migrations(tmp_path / "mig")
    m.migrate(pooled, m.discover(folder, "postgres"))
    for _ in range(3):
        m.inspect(pooled, m.discover(folder, "postgres"))
        # The next client's transaction may run on the session the read used.
        assert rows(pooled, "SHOW default_transaction_read_only") == [("off",)]
        rows(
            pooled,
            "INSERT INTO app_metadata VALUES ('k', 'v', now()) "
            "ON CONFLICT (key) DO UPDATE SET value = 'w'",
        )


def _concurrent_index(folder: Path) -> None:
    (folder / f"{V2:04d}_ix.postgres.sql").write_text(
        "-- migrate: transaction=off\n"
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "ix_meta_value" ON "app_metadata" ("value");\n'
    )
    (folder / f"{V2:04d}_ix.sqlite.sql").write_text(
        'CREATE INDEX "ix_meta_value" ON "app_metadata" ("value");\n'
    )


def test_a_file_outside_a_transaction_asks_for_the_direct_url(
    urls: tuple[PostgresTarget, PostgresTarget], tmp_path: Path
) -> None:
    """transaction=off through the pooler stops with one line naming the direct URL setting."""
    direct, pooled = urls
    folder = copy_migrations(tmp_path / "mig")
    _concurrent_index(folder)
    with pytest.raises(MigrationError, match="SERVICE_DIRECT_DATABASE_URL") as raised:
        m.migrate(pooled, m.discover(folder, "postgres"))
    assert "\n" not in str(raised.value)
    assert history(direct) == SHIPPED
    assert advisory_locks(direct) == []


def test_a_file_outside_a_transaction_runs_on_the_direct_url(
    urls: tuple[PostgresTarget, PostgresTarget], tmp_path: Path
) -> None:
    """With the direct URL set, the runner applies a transaction=off file; the index is valid."""
    direct, pooled = urls
    folder = copy_migrations(tmp_path / "mig")
    _concurrent_index(folder)
    m.migrate(
        PostgresTarget(pooled.url, direct_url=direct.url),
        m.discover(folder, "postgres"),
    )
    assert rows(
        direct,
        "SELECT x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "WHERE c.relname = 'ix_meta_value'",
    ) == [(True,)]
    assert advisory_locks(direct) == []


def test_a_direct_url_to_another_database_stops_the_start(
    urls: tuple[PostgresTarget, PostgresTarget],
    postgres: PostgresServer,
    pg_template: str,
) -> None:
    """SERVICE_DIRECT_DATABASE_URL reaching another database than the pooled URL:
    the start stops with one line naming the setting, without a password."""
    _, pooled = urls
    name = f"other_{os.getpid()}"
    other = postgres.create_database(name, template=pg_template)
    try:
        mixed = PostgresTarget(pooled.url, direct_url=other)
        m.migrate(pooled, m.discover(MIGRATIONS, "postgres"))
        with pytest.raises(StartupError, match="reaches another database") as raised:
            open_database(engine=engine_for(mixed)).close()
        assert "\n" not in str(raised.value)
        assert postgres.password not in str(raised.value)
    finally:
        postgres.drop_database(name)
