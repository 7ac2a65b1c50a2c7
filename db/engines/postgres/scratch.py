"""PostgreSQL scratch databases: created, and dropped WITH (FORCE) afterwards.

On a server: the one SERVICE_DATABASE_URL names, which needs a role that
may CREATE DATABASE, or a throwaway server started for the purpose
(server.py).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg2
from psycopg2 import sql

from db.engines.postgres.connection import connect
from db.engines.postgres.server import throwaway_server
from db.errors import MigrationError
from db.target import PostgresTarget


def with_database(target: PostgresTarget, name: str) -> PostgresTarget:
    """The same server, user and parameters, another database."""
    parts = urlsplit(target.url)
    query = f"?{parts.query}" if parts.query else ""
    # By hand: urlunsplit() drops the // of an empty netloc (a socket-only URL).
    return PostgresTarget(f"{parts.scheme}://{parts.netloc}/{name}{query}")


@dataclass(frozen=True)
class ServerScratch:
    """Scratch databases on the server a URL names."""

    server: PostgresTarget

    @contextlib.contextmanager
    def database(self) -> Iterator[PostgresTarget]:
        """An empty database of its own, dropped afterwards (WITH FORCE)."""
        base = (self.server.database or "postgres")[:30]
        name = f"{base}_scratch_{os.getpid()}_{secrets.token_hex(4)}"
        admin = connect(self.server, "scratch")
        try:
            with admin.cursor() as cur:
                try:
                    cur.execute(
                        sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                    )
                except psycopg2.Error as ex:
                    raise MigrationError(
                        f"cannot create a scratch database on {self.server.describe()} "
                        f"({str(ex).strip().splitlines()[0]}): the role needs CREATEDB, "
                        "or point SERVICE_DATABASE_URL at a development server"
                    ) from ex
            try:
                yield with_database(self.server, name)
            finally:
                with admin.cursor() as cur:
                    cur.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )
        finally:
            admin.close()


@contextlib.contextmanager
def server_scratch(server: PostgresTarget | None) -> Iterator[ServerScratch]:
    """Scratch databases on server, or on a throwaway server when None."""
    if server is not None:
        yield ServerScratch(server.direct())
        return
    with throwaway_server() as throwaway:
        yield ServerScratch(PostgresTarget(throwaway.url()))
