"""Refuse to start when the server cannot give every worker a connection."""

from __future__ import annotations

from typing import Any

from db.errors import StartupError

# Besides one connection per worker thread (the start-up thread's is open
# already, so counted as in use): the thread that records token uses.
EXTRA_CONNECTIONS = 1


def check_capacity(orm_db: Any, needed: int) -> None:
    """StartupError unless the server can give the service needed connections.

    Pony keeps one connection per worker thread; a server that cannot give
    one to each would fail requests under load instead of at start.
    """
    rows = orm_db.select(
        "SELECT current_setting('max_connections')::int, "
        "current_setting('superuser_reserved_connections')::int, "
        "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
    )
    maximum, reserved, used = rows[0]
    free = maximum - reserved - used
    if needed > free:
        raise StartupError(
            f"PostgreSQL has room for {free} more connection(s) "
            f"(max_connections {maximum}, {reserved} reserved, {used} in use); "
            f"the service needs {needed} more (one per SERVICE_THREADS worker and "
            "one for recording token use): lower SERVICE_THREADS or raise "
            "max_connections"
        )
