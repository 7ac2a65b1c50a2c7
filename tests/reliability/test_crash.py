"""kill -9 under write load and during migrations: nothing acknowledged is lost."""

from __future__ import annotations

import http.client
import random
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from db.target import DatabaseTarget
from tests import engines
from tests.helpers import REPO, copy_migrations, service_env, start_serve
from tests.reliability.support import (
    SHIPPED,
    Client,
    db_rows,
    integrity,
    kill,
    wait_exit,
)

pytestmark = pytest.mark.slow

# Each kill and restart takes a few seconds: fewer on the second engine.
KILLS = {"sqlite": 10, "postgres": 4}
WRITERS = 4
KEYS_PER_WRITER = 25


@dataclass
class Ledger:
    """What clients were told: acknowledged values, and the one write in flight."""

    acked: dict[str, str] = field(default_factory=dict)
    in_flight: dict[int, tuple[str, str] | None] = field(default_factory=dict)
    acked_this_round: int = 0
    unexpected: list[tuple[str, int, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def write_until_refused(
    url: str, writer: int, round_no: int, ledger: Ledger, stop: threading.Event
) -> None:
    """PUT this writer's keys in turn, each value unique, until the server dies."""
    client = Client(url, timeout=10)
    seq = 0
    try:
        while not stop.is_set():
            key = f"w{writer}.k{seq % KEYS_PER_WRITER:02d}"
            value = f"r{round_no}.w{writer}.s{seq}"
            ledger.in_flight[writer] = (key, value)
            try:
                status, _, payload = client.request(
                    "PUT", f"/v1/metadata/{key}", {"value": value}
                )
            except (OSError, http.client.HTTPException):
                return  # the server is gone; this write stays "in flight"
            if status in (200, 201):
                with ledger.lock:
                    ledger.acked[key] = value
                    ledger.acked_this_round += 1
                ledger.in_flight[writer] = None
            else:
                # Not acknowledged, and a refused write must not be applied.
                ledger.unexpected.append((key, status, payload[:200]))
                ledger.in_flight[writer] = None
            seq += 1
    finally:
        client.close()


def check_recovered(url: str, target: DatabaseTarget, ledger: Ledger) -> None:
    """Every acknowledged value reads back; an in-flight one may or may not."""
    client = Client(url)
    try:
        status, _, ready = client.json("GET", "/readyz")
        assert (status, ready["status"]) == (200, "ready")
        status, _, page = client.json("GET", "/v1/metadata?limit=1000")
        assert status == 200
    finally:
        client.close()
    stored = {item["key"]: item["value"] for item in page["items"]}
    maybe = {kv[0]: kv[1] for kv in ledger.in_flight.values() if kv is not None}
    for key in sorted(set(ledger.acked) | set(maybe) | set(stored)):
        allowed = {ledger.acked.get(key), maybe.get(key)} - {None}
        if key not in ledger.acked:
            allowed.add(None)  # never acknowledged: absent is fine
        assert stored.get(key) in allowed, (key, stored.get(key), allowed)
        if stored.get(key) is not None:
            ledger.acked[key] = stored[key]  # now durable: the new baseline
    ledger.in_flight = dict.fromkeys(ledger.in_flight)
    assert engines.integrity(target) == "ok"


@pytest.mark.timeout(150)
def test_kill_9_under_write_load_loses_no_acknowledged_write(
    target: DatabaseTarget,
) -> None:
    """SIGKILLs mid-load: every acknowledged write survives, the database is sound.

    Ten kills on SQLite, four on PostgreSQL (whose server keeps running:
    the killed process's open transactions are rolled back when its
    connections drop).
    """
    seed = random.randrange(1 << 30)  # kill timing, not secrets
    rng = random.Random(seed)
    print(f"seed {seed}")
    kills = KILLS[target.dialect]
    env = engines.env_for(target)
    ledger = Ledger()
    server = start_serve(env)
    started = time.monotonic()
    try:
        for round_no in range(kills):
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
            time.sleep(rng.uniform(0.3, 1.5))
            kill(server)
            stop.set()
            for thread in writers:
                thread.join(timeout=15)
                assert not thread.is_alive()
            assert ledger.acked_this_round > 0, f"round {round_no}: no write acked"
            print(f"round {round_no}: {ledger.acked_this_round} writes acknowledged")
            server = start_serve(env)
            check_recovered(server.url, target, ledger)
    finally:
        kill(server)
    print(
        f"{kills} kills, {len(ledger.acked)} keys checked, "
        f"{time.monotonic() - started:.1f} s"
    )
    assert ledger.unexpected == []
    assert len(ledger.acked) == WRITERS * KEYS_PER_WRITER


BIG = SHIPPED + 1
BIG_ROWS = 600_000
BEFORE = [(v,) for v in range(1, BIG)]
SLOW_MIGRATION = f"""-- a migration that takes a second or two
CREATE TABLE big (id INTEGER PRIMARY KEY, pad TEXT NOT NULL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {BIG_ROWS})
INSERT INTO big (id, pad) SELECT x, hex(randomblob(16)) FROM c;
CREATE INDEX big_pad ON big (pad);
"""


def migration_in_progress(db: Path) -> bool:
    """The shipped files are committed and the write lock is held: BIG runs."""
    con = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        try:
            versions = [
                r[0] for r in con.execute("SELECT version FROM schema_migrations")
            ]
        except sqlite3.OperationalError:
            return False  # no history table yet
        if versions != list(range(1, BIG)):
            return False
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as ex:
            return "locked" in str(ex)
        con.execute("ROLLBACK")
        return False
    finally:
        con.close()


def assert_not_applied(db: Path) -> None:
    """Nothing of BIG is visible and the file is sound."""
    assert integrity(db) == "ok"
    tables = {r[0] for r in db_rows(db, "SELECT name FROM sqlite_master")}
    assert "big" not in tables
    assert "big_pad" not in tables
    assert (
        db_rows(db, "SELECT version FROM schema_migrations ORDER BY version") == BEFORE
    )


@pytest.mark.timeout(90)
def test_kill_9_during_a_migration_leaves_nothing_half_applied(tmp_path: Path) -> None:
    """SIGKILL mid-migration (migrate, then serve): no trace; the next start finishes.

    SQLite only: it watches SQLite's write lock to kill mid-file. The
    PostgreSQL runner's kill test is in tests/db/engines/postgres/test_migration_backend.py.
    """
    rng = random.Random()  # kill timing, not secrets
    folder = copy_migrations(tmp_path / "mig", {f"{BIG:04d}_big.sql": SLOW_MIGRATION})
    db = tmp_path / "db.sqlite3"
    env = service_env(db, migrations_path=folder)
    for command in ("migrate", "serve"):
        process = subprocess.Popen(
            [sys.executable, "-m", "service", command],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        try:
            deadline = time.monotonic() + 30
            while not migration_in_progress(db):
                assert process.poll() is None, f"{command} ended before {BIG} ran"
                assert time.monotonic() < deadline, f"{BIG} never started"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.4))
            assert process.poll() is None, f"{command} finished before the kill"
            process.kill()
        finally:
            if process.poll() is None:
                process.kill()
            wait_exit(process, 10)
        assert process.returncode == -9
        assert_not_applied(db)

    started = time.monotonic()
    server = start_serve(env, timeout=60)
    try:
        status, _, ready = server.request("GET", "/readyz")
        assert (status, ready["schema_version"], ready["pending"]) == (200, BIG, [])
    finally:
        kill(server)
    print(
        f"restart after two kills applied {BIG} in {time.monotonic() - started:.1f} s"
    )
    assert integrity(db) == "ok"
    assert db_rows(db, "SELECT count(*), min(id), max(id) FROM big") == [
        (BIG_ROWS, 1, BIG_ROWS)
    ]
    assert db_rows(db, "SELECT name FROM sqlite_master WHERE name = 'big_pad'") == [
        ("big_pad",)
    ]
    assert db_rows(db, "SELECT version FROM schema_migrations ORDER BY version") == [
        *BEFORE,
        (BIG,),
    ]
