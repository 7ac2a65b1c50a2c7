"""Refuse to start when the server cannot give every worker a connection."""

from __future__ import annotations

from typing import Any

from db.errors import StartupError

# Besides one connection per worker thread, in each serving process: the
# thread that records token uses, and the process's main thread (which
# opened the database, or built the app of a worker process).
EXTRA_CONNECTIONS = 2


def connections_needed(threads: int, processes: int = 1) -> int:
    """Connections the service will hold beyond the one checking.

    Each serving process holds threads + EXTRA_CONNECTIONS. The checking
    connection (the main thread's of the process that opened the database)
    is in use already: it is one of them with one process, and is closed
    before the workers start with several.
    """
    return processes * (threads + EXTRA_CONNECTIONS) - 1


def check_capacity(orm_db: Any, threads: int, *, processes: int = 1) -> None:
    """StartupError unless the server can give every serving thread a connection.

    Pony keeps one connection per thread; a server that cannot give one to
    each thread of each process (SERVICE_WORKERS x SERVICE_THREADS, plus
    each process's own) would fail requests under load instead of at start.
    """
    needed = connections_needed(threads, processes)
    rows = orm_db.select(
        "SELECT current_setting('max_connections')::int, "
        "current_setting('superuser_reserved_connections')::int, "
        "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
    )
    maximum, reserved, used = rows[0]
    free = maximum - reserved - used
    if needed > free:
        per_process = (
            f"{threads + EXTRA_CONNECTIONS} per process: one per SERVICE_THREADS "
            "worker, one recording token use, one for start-up"
        )
        workers = (
            f" in each of {processes} SERVICE_WORKERS processes"
            if processes > 1
            else ""
        )
        raise StartupError(
            f"PostgreSQL has room for {free} more connection(s) "
            f"(max_connections {maximum}, {reserved} reserved, {used} in use); "
            f"the service needs {needed} more ({per_process}{workers}): lower "
            "SERVICE_WORKERS or SERVICE_THREADS, raise max_connections, or put "
            "pgbouncer in front"
        )
