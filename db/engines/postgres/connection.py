"""PostgreSQL connections, with nothing set for the whole session.

A transaction-pooling pgbouncer refuses startup options ("unsupported
startup parameter: options") and hands each transaction to whichever
server session is free, so a session-level SET, a session advisory lock
or a prepared statement may live on a session the next transaction does
not get. So no connection here carries session settings: Pony's
(connect_arguments()) and the runner's and tooling's own (connect())
take their settings per transaction (SET LOCAL, transaction.py). The one
exception is a file that runs outside a transaction (outside.py), which
needs a session of its own and refuses to run through a pooler.
"""

from __future__ import annotations

from typing import Any

import psycopg2
from psycopg2 import extensions

from db.engines.base.migration import actor
from db.errors import StartupError
from db.target import PostgresTarget

APPLICATION_NAME = "service-foundation"
APPLICATION = "service-foundation migrations"


def connect_arguments(url: str) -> dict[str, Any]:
    """psycopg2.connect() keywords for url: its own, and an application_name.

    application_name is one of the startup parameters pgbouncer accepts
    (and keeps per client); anything else the service needs is set per
    transaction.
    """
    arguments: dict[str, Any] = extensions.parse_dsn(url)
    arguments.setdefault("application_name", APPLICATION_NAME)
    return arguments


def first_line(ex: BaseException) -> str:
    """An error's first line (libpq's names host, port and user, never the password)."""
    text = str(ex).strip()
    return text.splitlines()[0] if text else type(ex).__name__


def connect(target: PostgresTarget, purpose: str, *, options: str | None = None) -> Any:
    """An autocommit psycopg2 connection named for pg_stat_activity.

    options (libpq's, "-c name=value ...") puts settings in the startup
    packet: only for a session that must be direct (outside.py).
    """
    extra: dict[str, str] = {}
    if options:
        given = extensions.parse_dsn(target.url).get("options", "")
        extra["options"] = f"{given} {options}".strip()
    try:
        con = psycopg2.connect(
            target.url,
            application_name=f"{APPLICATION} {purpose} {actor()}"[:63],
            **extra,
        )
    except psycopg2.Error as ex:
        raise StartupError(
            f"cannot connect to {target.describe()}: {first_line(ex)}"
        ) from ex
    con.autocommit = True
    return con


def behind_pooler(reported_pid: int, server_pid: int) -> bool:
    """Whether a connection pooler sits between the client and the server.

    A pooler that multiplexes (pgbouncer, and the others) answers the
    startup with a cancel key of its own, so the backend pid the client
    was told (psycopg2's get_backend_pid()) is not the pid of the server
    session that runs its statements (pg_backend_pid()). Connected
    directly, the two are always the same.
    """
    return reported_pid != server_pid


def pooled(con: Any) -> bool:
    """Whether con (psycopg2) reaches its server through a connection pooler."""
    with con.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        (server_pid,) = cur.fetchone()
    return behind_pooler(con.get_backend_pid(), server_pid)
