"""A throwaway PostgreSQL server for makemigration and check, from initdb.

When no SERVICE_DATABASE_URL names a server to make scratch databases on,
`makemigration` (and `check`) start one of their own: initdb and pg_ctl
from the PostgreSQL server binaries (on PATH, or Debian's
/usr/lib/postgresql/N/bin), a temporary folder, a Unix socket in it and
no TCP port, trust authentication for that socket only, fsync off. As
root, the server runs as the `postgres` user (initdb refuses root).
Stopped and removed when the block ends, whatever happens in it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from db.engines.postgres.scratch import ServerScratch
from db.errors import MigrationError
from db.target import DatabaseTarget, PostgresTarget

SERVER_USER = "postgres"


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's newest."""
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


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    # runuser is in /usr/sbin, which a minimal PATH may leave out.
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if runuser is None:
        raise MigrationError(
            "running as root, but runuser (util-linux) is not installed"
        )
    return [runuser, "-u", SERVER_USER, "--", *command]


def _run(command: list[str], what: str) -> None:
    try:
        subprocess.run(  # noqa: S603 - our own binaries, no shell
            _as_server_user(command),
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except FileNotFoundError as ex:
        raise MigrationError(f"{what} failed: {ex.strerror}: {ex.filename}") from ex
    except subprocess.CalledProcessError as ex:
        tail = (ex.stderr or ex.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise MigrationError(f"{what} failed: {tail[0]}") from ex


@contextlib.contextmanager
def throwaway_server() -> Iterator[ServerScratch]:
    """Start a private server; yields scratch databases on it."""
    bindir = find_bindir()
    if bindir is None:
        raise MigrationError(
            "no PostgreSQL server binaries (initdb, pg_ctl) found for the .postgres.sql "
            "half: install PostgreSQL (Debian: apt-get install postgresql), or set "
            "SERVICE_DATABASE_URL to a server where this role may CREATE DATABASE"
        )
    folder = Path(tempfile.mkdtemp(prefix="makemigration-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, SERVER_USER, SERVER_USER)
    started = False
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SERVER_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            "initdb",
        )
        options = (
            f"-k {folder} -c listen_addresses= -c fsync=off -c full_page_writes=off"
        )
        _run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(folder / "log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            ],
            "pg_ctl start",
        )
        started = True
        url = f"postgresql:///postgres?host={folder}&user={SERVER_USER}"
        yield ServerScratch(PostgresTarget(url))
    finally:
        if started:
            with contextlib.suppress(MigrationError):
                _run(
                    [
                        str(bindir / "pg_ctl"),
                        "-D",
                        str(data),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ],
                    "pg_ctl stop",
                )
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def scratch_server(target: DatabaseTarget) -> Iterator[ServerScratch]:
    """Where PostgreSQL scratch databases come from for target's settings.

    The server SERVICE_DATABASE_URL names, when the service runs on
    PostgreSQL (its role needs CREATEDB); otherwise a throwaway server.
    """
    if isinstance(target, PostgresTarget):
        yield ServerScratch(target)
        return
    with throwaway_server() as server:
        yield server
