"""PostgreSQL connections: Pony's, with the service's session settings, and direct ones.

Pony's provider connects with connect_arguments(); the runner, the
schema check, the introspection and the scratch databases use connect(),
an autocommit psycopg2 connection of their own named for pg_stat_activity.
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


def connect_arguments(url: str, lock_timeout: float) -> dict[str, Any]:
    """psycopg2.connect() keywords for url, with the service's session settings.

    lock_timeout bounds every wait for a row or table lock (55P03 past it:
    503, as SQLite's busy_timeout does). The settings travel in the
    startup packet's `options`, after any the URL carries, so that Pony's
    DISCARD ALL on releasing a connection resets the session to them.
    """
    arguments: dict[str, Any] = extensions.parse_dsn(url)
    options = arguments.get("options", "")
    ours = f"-c lock_timeout={max(1, round(lock_timeout * 1000))}"
    arguments["options"] = f"{options} {ours}".strip()
    arguments.setdefault("application_name", APPLICATION_NAME)
    return arguments


def connect(target: PostgresTarget, purpose: str) -> Any:
    """An autocommit psycopg2 connection named for pg_stat_activity."""
    try:
        con = psycopg2.connect(
            target.url, application_name=f"{APPLICATION} {purpose} {actor()}"[:63]
        )
    except psycopg2.Error as ex:
        # libpq's message names host, port and user, never the password.
        first = (
            str(ex).strip().splitlines()[0] if str(ex).strip() else type(ex).__name__
        )
        raise StartupError(f"cannot connect to {target.describe()}: {first}") from ex
    con.autocommit = True
    if con.server_version >= 140000:
        # A killed runner's statement stops within a second instead of running
        # on (and holding its locks) until it ends by itself.
        with con.cursor() as cur:
            cur.execute("SET client_connection_check_interval = '1s'")
    return con
