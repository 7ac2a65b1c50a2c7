"""Scratch databases: where files are applied to see what they create.

`check`, `baseline`, the lint and `makemigration` build the schema the
migration files produce by running the runner itself on a scratch
database of the same engine, never on the live one. SQLite: a file in a
temporary folder. PostgreSQL: a database created (and dropped with
FORCE afterwards) on a server: the one SERVICE_DATABASE_URL names, which
needs a role that may CREATE DATABASE, or a throwaway server started for
the purpose (pg_server.py).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
from psycopg2 import sql

from db.engines.postgres import locks as pg_lock
from db.errors import MigrationError
from db.target import DatabaseTarget, PostgresTarget, SqliteTarget


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
        admin = pg_lock.connect(self.server, "scratch")
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
def scratch_like(target: DatabaseTarget | Path) -> Iterator[DatabaseTarget]:
    """An empty database of target's engine (and server), removed afterwards."""
    if isinstance(target, PostgresTarget):
        with ServerScratch(target).database() as scratch:
            yield scratch
        return
    with tempfile.TemporaryDirectory(prefix="migrations-scratch-") as folder:
        yield SqliteTarget(Path(folder) / "scratch.sqlite3")
