"""A throwaway PostgreSQL server for the tests, from Debian's postgresql package.

initdb and pg_ctl run in a temporary folder on a free port, as the
`postgres` user when the tests run as root (initdb refuses root). The
server listens on 127.0.0.1 with password (SCRAM) authentication, so that
URLs carry a real password the service must never print, and on a Unix
socket inside its folder. Each test gets a database of its own, created
from a template when one is given (CREATE DATABASE ... TEMPLATE is a file
copy: a few milliseconds).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from psycopg2 import sql

SUPERUSER = "postgres"
# A test server: durability against an OS crash is not under test.
TEST_SETTINGS = {"fsync": "off", "full_page_writes": "off"}


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: $SERVICE_PG_BINDIR, PATH, or Debian's."""
    configured = os.environ.get("SERVICE_PG_BINDIR")
    if configured:
        return Path(configured)
    for candidate in sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    ):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(command: list[str], core: int | None = None) -> list[str]:
    if os.geteuid() == 0:
        # runuser is in /usr/sbin, which a minimal PATH (the walkthrough's) leaves out.
        runuser = shutil.which("runuser") or shutil.which(
            "runuser", path="/usr/sbin:/sbin"
        )
        command = [runuser or "runuser", "-u", SUPERUSER, "--", *command]
    # taskset execs; pg_ctl's postmaster and every backend it forks inherit the CPU.
    return command if core is None else ["taskset", "-c", str(core), *command]


@dataclass
class PostgresServer:
    """One running server; stop() removes it and its folder.

    settings are the server's -c options (the test defaults turn fsync
    off); core pins the server, backends included, to one CPU.
    """

    bindir: Path
    max_connections: int = 300
    settings: dict[str, str] = field(default_factory=lambda: dict(TEST_SETTINGS))
    core: int | None = None
    folder: Path = field(init=False)
    port: int = field(init=False)
    password: str = field(init=False)

    def start(self) -> PostgresServer:
        """initdb, then pg_ctl start; returns self once it accepts connections."""
        self.folder = Path(tempfile.mkdtemp(prefix="service-pg-"))
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        data = self.folder / "data"
        pwfile = self.folder / "pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.folder, SUPERUSER, SUPERUSER)
            shutil.chown(pwfile, SUPERUSER, SUPERUSER)
        subprocess.run(
            _as_server_user(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.folder}",
                "-c listen_addresses=127.0.0.1",
                f"-c max_connections={self.max_connections}",
                *(f"-c {name}={value}" for name, value in self.settings.items()),
            ]
        )
        subprocess.run(
            _as_server_user(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(self.folder / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    options,
                    "start",
                ],
                self.core,
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )
        return self

    def stop(self) -> None:
        """Stop the server (fast mode) and delete its folder."""
        subprocess.run(
            _as_server_user(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.folder / "data"),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ]
            ),
            check=False,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.folder, ignore_errors=True)

    def postmaster_pid(self) -> int:
        """The server's main process (its backends are its children)."""
        return int((self.folder / "data" / "postmaster.pid").read_text().split()[0])

    def url(self, database: str = "postgres", *, password: bool = True) -> str:
        """A postgresql:// URL for database on this server, over TCP."""
        secret = f":{self.password}" if password else ""
        return f"postgresql://{SUPERUSER}{secret}@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> psycopg2.extensions.connection:
        con = psycopg2.connect(
            host=str(self.folder), port=self.port, user=SUPERUSER, dbname="postgres"
        )
        con.autocommit = True
        return con

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create an empty database (or a copy of template); returns its URL."""
        con = self._admin()
        try:
            with con.cursor() as cur:
                statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                if template is not None:
                    statement += sql.SQL(" TEMPLATE {}").format(
                        sql.Identifier(template)
                    )
                cur.execute(statement)
        finally:
            con.close()
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any session still connected to it."""
        con = self._admin()
        try:
            with con.cursor() as cur:
                cur.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(name)
                    )
                )
        finally:
            con.close()

    def terminate_sessions(self, database: str) -> None:
        """End every session on database (a template must have none)."""
        con = self._admin()
        try:
            with con.cursor() as cur:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                )
        finally:
            con.close()
