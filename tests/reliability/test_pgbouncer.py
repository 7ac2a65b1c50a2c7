"""The service behind a transaction-pooling pgbouncer: starts, lock waits, kill -9.

The pooler runs from docs/pgbouncer.ini (tests/pgbouncer.py). Replicas
here reach PostgreSQL through it alone, the migration runner included
(no SERVICE_DIRECT_DATABASE_URL), so nothing they do may rely on a
server session outliving a transaction.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg2
import pytest

from db.engines.postgres.locks import key_number
from db.target import PostgresTarget
from tests import engines
from tests.helpers import copy_migrations, launch_serve, wait_ready
from tests.pg import PostgresServer
from tests.pgbouncer import PgBouncer
from tests.reliability.support import SHIPPED, Client, kill, serving
from tests.reliability.test_crash import (
    WRITERS,
    Ledger,
    check_recovered,
    write_until_refused,
)
from tests.reliability.test_locks import assert_busy, timed_put

pytestmark = pytest.mark.slow

REPLICAS = 3
ROUNDS = 3
FILES_PER_ROUND = 8
FIRST = SHIPPED + 1  # the table `ran`, without a key: a file run twice shows


def rows(target: PostgresTarget, sql: str) -> list[tuple[Any, ...]]:
    """Rows of one statement on a connection of its own (the direct URL).

    Targets, not URLs, cross function calls here: their repr hides the
    password, which a failing test's traceback would otherwise show.
    """
    con = psycopg2.connect(target.direct().url)
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        con.close()


def new_files(first: int, last: int) -> dict[str, str]:
    """Files first..last, each recording in `ran` that it ran."""
    return {
        f"{v:04d}_t{v}.sql": f"CREATE TABLE t{v} (id INTEGER PRIMARY KEY);\n"
        f"INSERT INTO t{v} SELECT generate_series(1, 500);\n"
        f"INSERT INTO ran (version) VALUES ({v});\n"
        for v in range(first, last + 1)
    }


@pytest.mark.timeout(400)
def test_three_replicas_start_at_once_through_the_pooler(
    pg_url: str, pgbouncer: PgBouncer, postgres: PostgresServer, tmp_path: Path
) -> None:
    """Three serves through the pooler start together on an empty database, then
    twice more with new files: all ready, each file applied once, no lock left,
    and no runner released a lock its server session did not hold."""
    server_log = postgres.folder / "server.log"
    log_start = server_log.stat().st_size
    direct = PostgresTarget(pg_url)
    pooled = pgbouncer.url(urlsplit(pg_url).path.lstrip("/"))
    folder = copy_migrations(
        tmp_path / "mig",
        {
            f"{FIRST:04d}_ran.postgres.sql": "CREATE TABLE ran (version INTEGER NOT NULL);\n",
            f"{FIRST:04d}_ran.sqlite.sql": "CREATE TABLE ran (version INTEGER NOT NULL);\n",
        },
    )
    env = engines.env_for(PostgresTarget(pooled), migrations_path=folder, threads=2)
    newest, applied = FIRST, 0
    for round_no in range(ROUNDS):
        copy_migrations(folder, new_files(newest + 1, newest + FILES_PER_ROUND))
        newest += FILES_PER_ROUND
        started = time.monotonic()
        # Launch all before waiting for any, so that their runners race.
        servers = [launch_serve(env) for _ in range(REPLICAS)]
        try:
            for server in servers:
                wait_ready(server, timeout=90)
            ready = time.monotonic() - started
            for server in servers:
                client = Client(server.url)
                status, _, body = client.json("GET", "/readyz")
                assert (status, body["schema_version"]) == (200, newest)
                key = f"/v1/metadata/r{round_no}-{server.process.pid}"
                assert client.json("PUT", key, {"value": "x"})[0] == 201
                client.close()
        finally:
            for server in servers:
                kill(server)
        applied += sum(
            str(line.get("message", "")).startswith("applied migration")
            for server in servers
            for line in server.lines
        )
        print(f"round {round_no}: {REPLICAS} replicas ready in {ready:.1f} s")
        # A lock taken on one pooled server session and "released" on another
        # would still be held here, and block the next round's starts.
        assert (
            rows(direct, "SELECT pid FROM pg_locks WHERE locktype = 'advisory'") == []
        )
        assert rows(
            direct, "SELECT version, count(*) FROM ran GROUP BY 1 ORDER BY 1"
        ) == [(v, 1) for v in range(FIRST + 1, newest + 1)]
    assert rows(direct, "SELECT version FROM schema_migrations ORDER BY 1") == [
        (v,) for v in range(1, newest + 1)
    ]
    assert applied == newest  # every file applied by exactly one replica
    # A session lock taken through the pooler is "released" on another server
    # session, which PostgreSQL logs as a warning.
    with server_log.open("rb") as log:
        log.seek(log_start)
        assert b"you don't own a lock" not in log.read()


def _serve_behind_a_held_lock(
    target: PostgresTarget, key: str, **settings: Any
) -> tuple[int, dict[str, str], bytes, float]:
    """PUT a key another session holds locked; the answer and how long it took.

    The service reaches target through the pooler only; the lock is held
    on a direct connection, for 12 s at most (a service without a bound
    answers once it ends).
    """
    with (
        serving(engines.env_for(PostgresTarget(target.url), **settings)) as server,
        contextlib.closing(Client(server.url)) as client,
    ):
        path = f"/v1/metadata/{key}"
        assert client.request("PUT", path, {"value": "1"})[0] == 201
        holder = psycopg2.connect(target.direct().url)
        release = threading.Timer(12, holder.rollback)
        try:
            with holder.cursor() as cur:
                cur.execute(
                    "SELECT 1 FROM app_metadata WHERE key = %s FOR UPDATE", (key,)
                )
                cur.execute(
                    "SELECT pg_advisory_xact_lock(%s)",
                    (key_number("app_metadata", key),),
                )
            release.start()
            answer = timed_put(server.url, key, "2")
        finally:
            release.cancel()
            holder.rollback()
            holder.close()
        # Nothing of the refused write stayed; the next one goes through at once.
        status, _, body = client.json("GET", path)
        assert (status, body["value"]) == (200, "1")
        assert timed_put(server.url, key, "3")[0] == 200
    return answer


@pytest.mark.engines("pgbouncer")
@pytest.mark.timeout(120)
def test_a_held_lock_answers_503_in_time_through_the_pooler(
    target: PostgresTarget,
) -> None:
    """Behind another session's lock, a write through the pooler gets a 503 with
    Retry-After once SERVICE_WRITE_LOCK_TIMEOUT passes, or the statement timeout."""
    by_lock = _serve_behind_a_held_lock(target, "by-lock", write_lock_timeout=1)
    assert_busy(*by_lock[:3])
    assert 0.9 < by_lock[3] < 3.0, by_lock[3]
    by_statement = _serve_behind_a_held_lock(
        target, "by-statement", write_lock_timeout=30, statement_timeout=1
    )
    assert_busy(*by_statement[:3])
    assert 0.9 < by_statement[3] < 3.0, by_statement[3]
    print(f"503 after {by_lock[3]:.2f} s (lock), {by_statement[3]:.2f} s (statement)")


@pytest.mark.engines("pgbouncer")
@pytest.mark.timeout(150)
def test_kill_9_under_writes_through_the_pooler_loses_nothing_acknowledged(
    target: PostgresTarget,
) -> None:
    """SIGKILLs mid-load through the pooler: every acknowledged write survives."""
    rng = random.Random()  # kill timing, not secrets
    env = engines.env_for(PostgresTarget(target.url))  # the runner too, pooled
    ledger = Ledger()
    server = launch_serve(env)
    wait_ready(server)
    try:
        for round_no in range(3):
            ledger.acked_this_round = 0
            stop = threading.Event()
            writers = [
                threading.Thread(
                    target=write_until_refused,
                    args=(server.url, w, round_no, ledger, stop),
                    daemon=True,
                )
                for w in range(WRITERS)
            ]
            for thread in writers:
                thread.start()
            time.sleep(rng.uniform(0.5, 1.5))
            kill(server)
            stop.set()
            for thread in writers:
                thread.join(timeout=15)
                assert not thread.is_alive()
            assert ledger.acked_this_round > 0, f"round {round_no}: no write acked"
            server = wait_ready(launch_serve(env), timeout=60)
            check_recovered(server.url, target, ledger)
    finally:
        kill(server)
    assert ledger.unexpected == []
    assert rows(target, "SELECT pid FROM pg_locks WHERE locktype = 'advisory'") == []
