"""The tests' pgbouncer: Debian's, in transaction pooling mode, before the tests' server.

It runs from docs/pgbouncer.ini, the configuration docs/postgres.md
shows, with only the addresses, ports and paths replaced: one wildcard
database entry sends every database name to the tests' server, so each
test's own database is reachable through it. As root it runs as the
`postgres` user (pgbouncer refuses root). stop() ends it and removes its
folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from db.engines.postgres.server import SERVER_USER, free_port
from tests.helpers import REPO
from tests.pg import PostgresServer

CONFIG = REPO / "docs" / "pgbouncer.ini"
_SETTING = re.compile(r"^(\s*)([a-z_]+)(\s*=\s*).*$")


def find_pgbouncer() -> str | None:
    """Debian's pgbouncer (in /usr/sbin, which a minimal PATH may leave out)."""
    return shutil.which("pgbouncer") or shutil.which(
        "pgbouncer", path="/usr/sbin:/sbin"
    )


def render(template: str, databases: str, settings: dict[str, str]) -> str:
    """The template with its [databases] replaced and some [pgbouncer] settings set."""
    lines: list[str] = []
    section = ""
    left = dict(settings)
    for line in template.splitlines():
        header = line.strip()
        if header.startswith("[") and header.endswith("]"):
            if section == "pgbouncer":
                lines += [f"{k} = {v}" for k, v in left.items()]
                left = {}
            section = header[1:-1]
            lines.append(line)
            if section == "databases":
                lines.append(databases)
            continue
        match = _SETTING.match(line)
        if section == "databases" and match:
            continue  # the documented entry: replaced by ours
        if section == "pgbouncer" and match and match.group(2) in left:
            lines.append(f"{match.group(2)} = {left.pop(match.group(2))}")
            continue
        lines.append(line)
    lines += [f"{k} = {v}" for k, v in left.items()]
    return "\n".join(lines) + "\n"


@dataclass
class PgBouncer:
    """One pgbouncer in front of server; users maps role to password."""

    binary: str
    server: PostgresServer
    users: dict[str, str] = field(default_factory=dict)
    folder: Path = field(init=False)
    port: int = field(init=False)
    process: subprocess.Popen[bytes] | None = field(init=False, default=None)

    def start(self) -> PgBouncer:
        """Write the configuration, start pgbouncer, wait until it accepts."""
        self.folder = Path(tempfile.mkdtemp(prefix="service-pgbouncer-"))
        self.port = free_port()
        users = {SERVER_USER: self.server.password, **self.users}
        userlist = self.folder / "userlist.txt"
        userlist.write_text("".join(f'"{u}" "{p}"\n' for u, p in users.items()))
        ini = self.folder / "pgbouncer.ini"
        ini.write_text(
            render(
                CONFIG.read_text(),
                f"* = host=127.0.0.1 port={self.server.port}",
                {
                    "listen_addr": "127.0.0.1",
                    "listen_port": str(self.port),
                    "auth_file": str(userlist),
                    "unix_socket_dir": "",
                    "logfile": str(self.folder / "pgbouncer.log"),
                    "pidfile": str(self.folder / "pgbouncer.pid"),
                },
            )
        )
        as_user = {}
        if os.geteuid() == 0:
            for path in (self.folder, userlist, ini):
                shutil.chown(path, SERVER_USER, SERVER_USER)
            as_user = {"user": SERVER_USER, "group": SERVER_USER}
        os.chmod(userlist, 0o600)
        self.process = subprocess.Popen(
            [self.binary, str(ini)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **as_user,  # type: ignore[call-overload]
        )
        self._wait_listening(30)
        return self

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.log()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen in {timeout} s")

    def log(self) -> str:
        """What pgbouncer logged (connections, errors; never a password)."""
        path = self.folder / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def url(self, database: str, user: str = SERVER_USER) -> str:
        """A postgresql:// URL through the pooler for user (its password)."""
        password = self.server.password if user == SERVER_USER else self.users[user]
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """End pgbouncer (SIGTERM: at once) and remove its folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)
