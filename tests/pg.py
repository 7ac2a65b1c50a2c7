"""The tests' PostgreSQL server: db/engines/postgres/server.py's, over TCP.

initdb and pg_ctl run in a temporary folder on a free port, as the
`postgres` user when the tests run as root (initdb refuses root), found
the way makemigration finds them ($SERVICE_PG_BINDIR first). The server
listens on 127.0.0.1 with password (SCRAM) authentication, so that URLs
carry a real password the service must never print, and on a Unix socket
inside its folder. Each test gets a database of its own, created from a
template when one is given (CREATE DATABASE ... TEMPLATE is a file copy:
a few milliseconds).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from db.engines.postgres import server
from db.engines.postgres.server import free_port as free_port

# A test server: durability against an OS crash is not under test.
TEST_SETTINGS = server.SCRATCH_SETTINGS


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: $SERVICE_PG_BINDIR, PATH, or Debian's."""
    return server.find_bindir(os.environ.get("SERVICE_PG_BINDIR"))


@dataclass
class PostgresServer(server.ThrowawayServer):
    """One running server, over TCP with a password; stop() removes it.

    settings are the server's -c options (fsync off by default); core
    pins the server, backends included, to one CPU.
    """

    tcp: bool = True
    max_connections: int | None = 300
