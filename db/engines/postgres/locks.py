"""The PostgreSQL migration lock: a session advisory lock on its own connection.

Session scope, because a run spans many transactions and statements that
run outside one (CREATE INDEX CONCURRENTLY); it dies with its backend,
so a killed runner never leaves a stale lock. Taken with
pg_try_advisory_lock polled against a deadline, never a blocking
pg_advisory_lock: a session blocked waiting would sit in a transaction
that a concurrent CREATE INDEX CONCURRENTLY must wait for, a deadlock
(flyway#1654, golang-migrate#960; ../shared/reference/migrations.md §4c).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import time
from collections.abc import Iterator
from typing import Any

import psycopg2

from db.engines.postgres.connection import APPLICATION, connect
from db.target import PostgresTarget


def key_number(*key: object) -> int:
    """A signed 64-bit number for a logical key, for pg_advisory_xact_lock."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_key(con: Any) -> int:
    """A 64-bit key for this database and schema's migration runs."""
    with con.cursor() as cur:
        cur.execute("SELECT current_database(), current_schema()")
        database, schema = cur.fetchone()
    digest = hashlib.sha256(f"{APPLICATION}:{database}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _holder(con: Any, key: int) -> str:
    """Who holds the lock, for the timeout message."""
    with con.cursor() as cur:
        cur.execute(
            "SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND l.granted AND l.objid = (%s::bigint & 4294967295)::oid "
            "AND l.classid = ((%s::bigint >> 32) & 4294967295)::oid",
            (key, key),
        )
        row = cur.fetchone()
    if row is None:
        return "another session"
    return f"pid {row[0]} ({row[1] or 'no application_name'}, since {row[2]:%Y-%m-%d %H:%M:%S})"


@contextlib.contextmanager
def advisory_lock(target: PostgresTarget, timeout: float) -> Iterator[None]:
    """Hold the migration lock on a connection of its own for the block."""
    con = connect(target, "lock")
    try:
        key = lock_key(con)
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            with con.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                if cur.fetchone()[0]:
                    break
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"the migration lock on {target.describe()} was held by "
                    f"{_holder(con, key)} for over {timeout:.0f} s"
                )
            time.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter only
            delay = min(delay * 2, 1.0)
        try:
            yield
        finally:
            with contextlib.suppress(psycopg2.Error), con.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        con.close()  # the server drops the lock with the session in any case
