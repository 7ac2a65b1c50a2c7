"""A throwaway PostgreSQL server: makemigration's and check's, and the tests'.

initdb and pg_ctl from the PostgreSQL server binaries (find_bindir(): a
folder given, else PATH, else Debian's newest /usr/lib/postgresql/N/bin)
in a temporary folder, fsync off; as root, the server runs as the
`postgres` user (initdb refuses root). It always listens on a Unix socket
inside its folder with trust authentication; with tcp=True also on
127.0.0.1 at a free port, with a password (SCRAM) that URLs carry. stop()
removes it and its folder.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from db.errors import MigrationError

SERVER_USER = "postgres"
# A scratch server: durability against an OS crash is not what it is for.
SCRATCH_SETTINGS = {"fsync": "off", "full_page_writes": "off"}


def find_bindir(configured: str | Path | None = None) -> Path | None:
    """The folder holding initdb and pg_ctl: configured, PATH, or Debian's newest."""
    if configured:
        return Path(configured)
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parents[1].name) if Path(p).parents[1].name.isdigit() else 0
        ),
    )
    return Path(candidates[-1]).parent if candidates else None


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(command: list[str], core: int | None = None) -> list[str]:
    if os.geteuid() == 0:
        # runuser is in /usr/sbin, which a minimal PATH may leave out.
        runuser = shutil.which("runuser") or shutil.which(
            "runuser", path="/usr/sbin:/sbin"
        )
        if runuser is None:
            raise MigrationError(
                "running as root, but runuser (util-linux) is not installed"
            )
        command = [runuser, "-u", SERVER_USER, "--", *command]
    # taskset execs; pg_ctl's postmaster and every backend it forks inherit the CPU.
    return command if core is None else ["taskset", "-c", str(core), *command]


def _run(command: list[str], what: str, timeout: float) -> None:
    try:
        subprocess.run(  # noqa: S603 - the server's own binaries, no shell
            command, check=True, capture_output=True, text=True, timeout=timeout
        )
    except FileNotFoundError as ex:
        raise MigrationError(f"{what} failed: {ex.strerror}: {ex.filename}") from ex
    except subprocess.CalledProcessError as ex:
        tail = (ex.stderr or ex.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise MigrationError(f"{what} failed: {tail[0]}") from ex


@dataclass
class ThrowawayServer:
    """One server of its own; start() it, stop() removes it.

    tcp adds a TCP listener on 127.0.0.1 with password authentication;
    max_connections and settings are its -c options; core pins the
    server, backends included, to one CPU; stop_mode is pg_ctl's.
    """

    bindir: Path
    tcp: bool = False
    max_connections: int | None = None
    settings: dict[str, str] = field(default_factory=lambda: dict(SCRATCH_SETTINGS))
    core: int | None = None
    stop_mode: str = "fast"
    folder: Path = field(init=False)
    port: int = field(init=False)
    password: str = field(init=False)

    def start(self) -> ThrowawayServer:
        """initdb, then pg_ctl start; returns self once it accepts connections."""
        self.folder = Path(tempfile.mkdtemp(prefix="service-pg-"))
        self.port = free_port() if self.tcp else 5432
        self.password = secrets.token_urlsafe(16) if self.tcp else ""
        try:
            self._initdb()
            self._pg_ctl("start", self._options(), timeout=90)
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb(self) -> None:
        auth = ["--auth=trust"]
        if os.geteuid() == 0:
            shutil.chown(self.folder, SERVER_USER, SERVER_USER)
        if self.tcp:
            pwfile = self.folder / "pwfile"
            pwfile.write_text(self.password + "\n")
            if os.geteuid() == 0:
                shutil.chown(pwfile, SERVER_USER, SERVER_USER)
            auth = [
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ]
        command = [
            str(self.bindir / "initdb"),
            *("-D", str(self.folder / "data"), "-U", SERVER_USER),
            *auth,
            *("--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"),
        ]
        _run(_as_server_user(command), "initdb", timeout=120)

    def _options(self) -> str:
        listen = "127.0.0.1" if self.tcp else ""
        options = [
            f"-p {self.port}",
            f"-k {self.folder}",
            f"-c listen_addresses={listen}",
        ]
        if self.max_connections is not None:
            options.append(f"-c max_connections={self.max_connections}")
        options += [f"-c {name}={value}" for name, value in self.settings.items()]
        return " ".join(options)

    def _pg_ctl(self, action: str, options: str | None, timeout: float) -> None:
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data")]
        if action == "start":
            command += ["-l", str(self.folder / "server.log"), "-w", "-t", "60"]
            command += ["-o", options or "", "start"]
        else:
            command += ["-m", self.stop_mode, "-w", "stop"]
        _run(
            _as_server_user(command, self.core if action == "start" else None),
            f"pg_ctl {action}",
            timeout,
        )

    def stop(self) -> None:
        """Stop the server, if it runs, and delete its folder."""
        if (self.folder / "data" / "postmaster.pid").exists():
            with contextlib.suppress(MigrationError, subprocess.TimeoutExpired):
                self._pg_ctl("stop", None, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)

    def postmaster_pid(self) -> int:
        """The server's main process (its backends are its children)."""
        return int((self.folder / "data" / "postmaster.pid").read_text().split()[0])

    def url(self, database: str = "postgres", *, password: bool = True) -> str:
        """A postgresql:// URL for database: over TCP when it listens there."""
        if not self.tcp:
            return (
                f"postgresql:///{database}?host={self.folder}&port={self.port}"
                f"&user={SERVER_USER}"
            )
        secret = f":{self.password}" if password else ""
        return f"postgresql://{SERVER_USER}{secret}@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> Any:
        con = psycopg2.connect(
            host=str(self.folder), port=self.port, user=SERVER_USER, dbname="postgres"
        )
        con.autocommit = True
        return con

    def _execute(self, statement: Any, params: tuple[Any, ...] = ()) -> None:
        con = self._admin()
        try:
            with con.cursor() as cur:
                cur.execute(statement, params)
        finally:
            con.close()

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create an empty database (or a copy of template); returns its URL."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        self._execute(statement)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any session still connected to it."""
        self._execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )

    def terminate_sessions(self, database: str) -> None:
        """End every session on database (a template must have none)."""
        self._execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )


@contextlib.contextmanager
def throwaway_server() -> Iterator[ThrowawayServer]:
    """A private scratch server (socket only) for the block; MigrationError if none."""
    bindir = find_bindir()
    if bindir is None:
        raise MigrationError(
            "no PostgreSQL server binaries (initdb, pg_ctl) found for the .postgres.sql "
            "half: install PostgreSQL (Debian: apt-get install postgresql), or set "
            "SERVICE_DATABASE_URL to a server where this role may CREATE DATABASE"
        )
    server = ThrowawayServer(bindir, stop_mode="immediate").start()
    try:
        yield server
    finally:
        server.stop()
