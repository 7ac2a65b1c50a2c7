"""Refuse to start when the server cannot give every worker a connection.

The budget of one serving process: one connection per worker thread
(Pony keeps one per thread), one for the thread that records token use,
and the start-up thread's, which Pony keeps open. Every process sharing
the budget (processes: worker processes, one day) needs as much. The
migration runner takes RUNNER_CONNECTIONS more while it runs (the
lock's transaction and the work; a third while a transaction=off file
runs on a session of its own), and is done before the check.

What is in use is counted for every role: pg_stat_database's
numbackends, which any role may read, where pg_stat_activity hides
other roles' backend types. It also counts the autovacuum workers that
have no share of max_connections, so it errs on the safe side.
"""

from __future__ import annotations

import logging
from typing import Any

from db.engines.postgres.connection import behind_pooler
from db.errors import StartupError

log = logging.getLogger("db.database")

PER_PROCESS = 2  # the token-use thread's and the start-up thread's
RUNNER_CONNECTIONS = 2

_QUERY = (
    "SELECT current_setting('max_connections')::int, "
    "current_setting('superuser_reserved_connections')::int "
    # PostgreSQL 16's slots for pg_use_reserved_connections.
    "+ coalesce(current_setting('reserved_connections', true), '0')::int, "
    "(SELECT coalesce(sum(numbackends), 0) FROM pg_stat_database)::int, "
    "pg_backend_pid()"
)


def needed(threads: int, processes: int = 1) -> int:
    """Connections the service holds while it serves."""
    return processes * (threads + PER_PROCESS)


def check_capacity(orm_db: Any, threads: int, processes: int = 1) -> None:
    """StartupError unless the server can give the service its connections.

    Call inside a db_session. Behind a connection pooler the service's
    connections are the pooler's clients: its pool, not the threads,
    bounds what the server gives, so there is nothing to check here.
    """
    connection = orm_db.get_connection()  # a transaction: one server session
    maximum, reserved, used, server_pid = orm_db.select(_QUERY)[0]
    if behind_pooler(connection.get_backend_pid(), server_pid):
        log.info(
            "connected through a connection pooler: its pool size, not "
            "SERVICE_THREADS, bounds this service's server connections",
            extra={"event.action": "pooled"},
        )
        return
    free = maximum - reserved - used
    total = needed(threads, processes)
    more = total - 1  # this thread's connection is open, so counted in use
    if more > free:
        per = f"SERVICE_THREADS {threads} + {PER_PROCESS}"
        each = f"SERVICE_WORKERS {processes} x ({per})" if processes > 1 else per
        raise StartupError(
            f"PostgreSQL has room for {free} more connection(s) "
            f"(max_connections {maximum}, {reserved} reserved, {used} in use by "
            f"every role); the service needs {total} ({each}: one per worker "
            "thread, one recording token use, the start-up thread's), "
            f"{more} more: lower SERVICE_WORKERS or SERVICE_THREADS, raise "
            "max_connections, or put a pooler in front"
        )
