"""A race harness: a guarded write stuck behind a lock while its guard changes.

A check that guards a write (token valid, caller a member or the owner,
the row still there) must be made inside the write transaction, after the
lock: a revocation, removal or deletion answered 2xx is final. To test
that, the window a check-then-act race needs is widened on purpose:

1. another connection holds the lock the guarded write needs: SQLite's
   write lock (BEGIN IMMEDIATE), or on PostgreSQL the advisory or row
   locks the competing writer takes;
2. the guarded write is sent over real HTTP to a real waitress server
   and the harness waits until it is stuck behind that lock;
3. the holder performs the revocation, removal or deletion in its
   transaction and commits, which releases the lock;
4. the write's answer and the stored rows are then checked by the test.

SQLite shows no lock waiters, so there the harness waits until the write
has passed this process's write gate (after authentication, before
BEGIN IMMEDIATE); PostgreSQL's pg_stat_activity shows the wait itself.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import falcon.testing
import psycopg2

from db.database import Database
from db.engines.postgres.locks import key_number
from db.target import DatabaseTarget, PostgresTarget
from service.app import create_app
from service.server import Server
from tests.engines import settings_for
from tests.messaging_helpers import ADMIN, ADMIN_TOKEN
from tests.reliability.support import Client

# Any non-null revoked_at revokes a token; text both engines take.
REVOKED_AT = "2026-01-01 00:00:00.000000"


def conversation_lock(conversation_id: int) -> str:
    """The advisory lock writers of one conversation take (PostgreSQL)."""
    return (
        f"SELECT pg_advisory_xact_lock({key_number('conversations', conversation_id)})"
    )


@dataclass
class Service:
    """The app on a real waitress server, and an in-process client for set-up."""

    database: Database
    target: DatabaseTarget
    url: str
    setup: falcon.testing.TestClient
    gate_passed: threading.Event

    def user(self, handle: str) -> tuple[str, int]:
        """Create a user; returns a fresh API token and its id."""
        made = self.setup.simulate_post(
            "/v1/users",
            json={"handle": handle, "display_name": handle.title()},
            headers=ADMIN,
        )
        assert made.status_code == 201, made.text
        issued = self.setup.simulate_post(f"/v1/users/{handle}/tokens", headers=ADMIN)
        assert issued.status_code == 201, issued.text
        return str(issued.json["token"]), int(issued.json["id"])

    def send(
        self, method: str, path: str, body: Any = None, token: str = ADMIN_TOKEN
    ) -> Future[tuple[int, bytes]]:
        """Send one request over HTTP from another thread; its future answer."""

        def call() -> tuple[int, bytes]:
            client = Client(self.url)
            try:
                status, _, payload = client.request(
                    method, path, body, headers={"Authorization": f"Bearer {token}"}
                )
            finally:
                client.close()
            return status, payload

        pool = ThreadPoolExecutor(max_workers=1)
        future = pool.submit(call)
        pool.shutdown(wait=False)
        return future


@contextlib.contextmanager
def serving(database: Database, target: DatabaseTarget) -> Iterator[Service]:
    """The app (with an admin token) on a real waitress server."""
    app = create_app(settings_for(target, admin_token=ADMIN_TOKEN), database=database)
    passed = threading.Event()
    previous = database.gate.observe

    def observe(waited: float, acquired: bool) -> None:
        if previous is not None:
            previous(waited, acquired)
        passed.set()

    database.on_write_lock_wait(observe)
    server = Server(app, host="127.0.0.1", port=0, threads=4, shutdown_timeout=5)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield Service(
            database, target, server.url, falcon.testing.TestClient(app), passed
        )
    finally:
        server.stop()
        thread.join(timeout=10)


class Holder:
    """Another connection's open write transaction: the competing writer."""

    def __init__(self, target: DatabaseTarget) -> None:
        self.target = target
        self.postgres = isinstance(target, PostgresTarget)
        if isinstance(target, PostgresTarget):
            self.con: Any = psycopg2.connect(target.url)
        else:
            self.con = sqlite3.connect(target.path, isolation_level=None, timeout=10)
            self.con.execute("BEGIN IMMEDIATE")

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One statement in the held transaction (sqlite3's `?` placeholders)."""
        cur = self.con.cursor()
        if self.postgres:
            sql = sql.replace("?", "%s")
        cur.execute(sql, params)
        found = cur.fetchall() if cur.description else []
        cur.close()
        return [tuple(r) for r in found]

    def lock(self, *statements: str) -> None:
        """Take PostgreSQL locks (SQLite's write lock is held already)."""
        if self.postgres:
            for statement in statements:
                self.run(statement)

    def commit(self) -> None:
        """Commit: the competing writer answered 2xx; its locks are released."""
        self.con.commit() if self.postgres else self.con.execute("COMMIT")

    def close(self) -> None:
        """Roll back anything left and disconnect."""
        with contextlib.suppress(Exception):
            self.con.rollback() if self.postgres else self.con.execute("ROLLBACK")
        self.con.close()

    def has_column(self, table: str, column: str) -> bool:
        """Whether the schema has table.column (the owner column came in 0004)."""
        if self.postgres:
            return bool(
                self.run(
                    "SELECT 1 FROM information_schema.columns "
                    "WHERE table_schema = current_schema() "
                    "AND table_name = ? AND column_name = ?",
                    (table, column),
                )
            )
        return any(r[1] == column for r in self.run(f"PRAGMA table_info({table})"))


def wait_until_stuck(service: Service, holder: Holder, timeout: float = 10) -> None:
    """Return once the guarded write waits for the holder's lock.

    PostgreSQL: a backend of this database waits on a lock. SQLite: the
    write passed this process's write gate, so it authenticated and is
    at (or about to be at) BEGIN IMMEDIATE, which the holder blocks.
    """
    deadline = time.monotonic() + timeout
    if not holder.postgres:
        assert service.gate_passed.wait(timeout), "the write never reached the lock"
        time.sleep(0.05)  # into BEGIN IMMEDIATE's busy wait (not needed to be right)
        return
    assert isinstance(service.target, PostgresTarget)
    watcher = psycopg2.connect(service.target.url)
    watcher.autocommit = True
    try:
        with watcher.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                if cur.fetchone()[0]:
                    return
                time.sleep(0.01)
    finally:
        watcher.close()
    raise AssertionError("the write never waited for the holder's lock")


def race(
    service: Service,
    locks: tuple[str, ...],
    write: Callable[[], Future[tuple[int, bytes]]],
    act: Callable[[Holder], None],
) -> tuple[int, bytes]:
    """Hold locks, start write, let act commit while it waits; the write's answer."""
    service.gate_passed.clear()
    holder = Holder(service.target)
    try:
        holder.lock(*locks)
        answer = write()
        try:
            wait_until_stuck(service, holder)
        except AssertionError:
            holder.close()
            raise AssertionError(f"not stuck; answered {answer.result(10)}") from None
        act(holder)
        holder.commit()
    finally:
        holder.close()
    return answer.result(timeout=30)
