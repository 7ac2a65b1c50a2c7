"""The PostgreSQL migration lock: an advisory lock held by a transaction of its own.

The runner opens a connection for the lock, begins a transaction on it
and takes pg_try_advisory_xact_lock(key), polled against a deadline with
a ROLLBACK between tries, never a blocking wait: a session blocked
inside a statement holds a snapshot that a concurrent CREATE INDEX
CONCURRENTLY must wait for, a deadlock (flyway#1654, golang-migrate#960;
../shared/reference/migrations.md §4c). Once granted, the transaction
stays open, idle, for the whole run: READ COMMITTED keeps no snapshot
between statements, so it holds up neither CREATE INDEX CONCURRENTLY nor
VACUUM. The lock ends with the transaction: when the run ends, or when
the runner dies (its server session rolls back as its socket closes;
pgbouncer closes a server connection whose client left mid-transaction).

Why a transaction and not the session: through a transaction-pooling
pgbouncer each autocommit statement may reach another server session,
so a session-level lock can be taken on one session and "released" on
another, and stay held on a pooled server connection for good, blocking
every later start. An open transaction keeps its server session, through
a pooler as on a direct connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import time
from collections.abc import Iterator
from typing import Any

import psycopg2

from db.engines.postgres.connection import APPLICATION, connect, first_line
from db.errors import MigrationError
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


class HeldLock:
    """The run's lock, while its transaction is open on its connection."""

    def __init__(self, con: Any, target: PostgresTarget) -> None:
        self._con = con
        self._target = target

    def confirm(self) -> None:
        """MigrationError unless the lock's transaction is still open.

        A server or pooler that ended it (an idle-in-transaction timeout,
        a restart) ended the lock: the run stops before its next file.
        """
        try:
            with self._con.cursor() as cur:
                cur.execute("SELECT 1")
        except psycopg2.Error as ex:
            raise MigrationError(
                f"lost the migration lock on {self._target.describe()} "
                f"({first_line(ex)}); nothing more was applied: start again"
            ) from ex


def _try(con: Any, key: int) -> bool:
    """BEGIN and try the lock; the transaction stays open only when granted."""
    with con.cursor() as cur:
        cur.execute("BEGIN")
        # A server-wide idle-in-transaction timeout must not end the lock
        # mid-run; the lock still ends when this connection does.
        cur.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (key,))
        if cur.fetchone()[0]:
            return True
        cur.execute("ROLLBACK")
    return False


@contextlib.contextmanager
def advisory_lock(target: PostgresTarget, timeout: float) -> Iterator[HeldLock]:
    """Hold the migration lock, in a transaction of its own, for the block."""
    con = connect(target, "lock")
    try:
        key = lock_key(con)
        deadline = time.monotonic() + timeout
        delay = 0.05
        while not _try(con, key):
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"the migration lock on {target.describe()} was held by "
                    f"{_holder(con, key)} for over {timeout:.0f} s"
                )
            time.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter only
            delay = min(delay * 2, 1.0)
        try:
            yield HeldLock(con, target)
        finally:
            with contextlib.suppress(psycopg2.Error), con.cursor() as cur:
                cur.execute("ROLLBACK")  # ends the transaction, and the lock
    finally:
        con.close()  # the server ends the transaction with the session in any case
