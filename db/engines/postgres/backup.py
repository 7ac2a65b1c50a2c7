"""Backups of a PostgreSQL database with pg_dump, its password kept off every output.

`backup PATH` on PostgreSQL runs the server's own tool: pg_dump in its
custom format (compressed; pg_restore reads it, in parallel with --jobs,
and it holds the schema, the data and the sequences' positions as one
snapshot). pg_dump is found on PATH; without it, one line says what to
install. The URL's password reaches pg_dump through a passfile of mode
0600 in a private temporary folder, never through its command line (which
every local user can read in /proc) or its output, and any error text is
scrubbed of it before it is shown. The dump is written to a temporary
file beside PATH, read back with `pg_restore --list`, and only then moved
into place; every failure removes it, and one a killed backup left is
removed by the next (db/engines/base/backup.py, which also refuses targets that
are not regular files).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from psycopg2 import extensions

from db.engines.base.backup import move_into_place, partial_copy, refuse_special
from db.errors import DatabaseError
from db.target import PostgresTarget

INSTALL_HINT = (
    "install the PostgreSQL client tools of the server's major version or newer "
    "(Debian: apt-get install postgresql-client), or run "
    'pg_dump --format=custom --file=PATH "$SERVICE_DATABASE_URL" yourself'
)


class BackupError(DatabaseError):
    """pg_dump is missing, the target is refused, or the dump failed; one line."""


@dataclass(frozen=True)
class Dump:
    """A finished, verified dump."""

    path: Path
    entries: int  # items in its table of contents (pg_restore --list)
    tool: str  # pg_dump's own version line


def check_target(target: Path, *, force: bool = False) -> Path:
    """Where the dump goes (absolute); BackupError for a target that cannot be one."""
    target = target.expanduser().absolute()
    refuse_special(target, BackupError)
    if not target.parent.is_dir():
        raise BackupError(f"backup folder {target.parent} does not exist")
    if target.exists() and not force:
        raise BackupError(f"backup target {target} exists; pass --force to replace it")
    return target


def tools() -> tuple[str, str]:
    """pg_dump and pg_restore from PATH; BackupError naming what to install."""
    found = {name: shutil.which(name) for name in ("pg_dump", "pg_restore")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise BackupError(
            f"backup on PostgreSQL runs pg_dump, and {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not on PATH: {INSTALL_HINT}"
        )
    return found["pg_dump"] or "", found["pg_restore"] or ""


def _passfile_line(password: str) -> str:
    # libpq's .pgpass format: host:port:database:user:password, with
    # backslash and colon escaped in each field.
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    return f"*:*:*:*:{escaped}\n"


@contextlib.contextmanager
def conninfo_without_password(target: PostgresTarget) -> Iterator[tuple[str, str]]:
    """(conninfo for pg_dump's --dbname, the password or ''), for one block.

    The password moves from the URL into a passfile that lives as long as
    the block. A URL with an sslpassword (a client key's passphrase) is
    refused: libpq reads that one from nowhere but the connection string.
    """
    params: dict[str, str] = extensions.parse_dsn(target.url)
    if "sslpassword" in params:
        raise BackupError(
            "the URL holds an sslpassword, which pg_dump could only be given on its "
            "command line (readable by every local user): use a client key without "
            "a passphrase for backups, or run pg_dump yourself"
        )
    password = params.pop("password", "")
    if not password:
        yield extensions.make_dsn(**params), ""
        return
    with tempfile.TemporaryDirectory(prefix="service-backup-") as private:
        passfile = Path(private) / "pgpass"
        descriptor = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as fh:
            fh.write(_passfile_line(password))
        yield extensions.make_dsn(**params, passfile=str(passfile)), password


def _one_line(text: str, password: str) -> str:
    line = " ".join(text.split()) or "no output"
    return line.replace(password, "***") if password else line


def _run(command: list[str], what: str, password: str) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - pg_dump/pg_restore from PATH, no shell
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as ex:
        raise BackupError(f"{what} could not run: {ex.strerror}") from ex
    if done.returncode != 0:
        raise BackupError(
            f"{what} failed (exit {done.returncode}): "
            + _one_line(done.stderr or done.stdout, password)
        )
    return done.stdout


def dump(target: PostgresTarget, path: Path, *, force: bool = False) -> Dump:
    """pg_dump target into path (custom format), verified; BackupError otherwise.

    On the direct URL when one is set: pg_dump sets session parameters and
    reads in one long transaction, which a transaction pooler would split.
    """
    target = target.direct()
    final = check_target(path, force=force)
    pg_dump, pg_restore = tools()
    version = _run([pg_dump, "--version"], "pg_dump --version", "").strip()
    with contextlib.ExitStack() as stack:
        try:
            # mkstemp's mode 0600: a dump holds every row.
            partial = stack.enter_context(partial_copy(final))
        except OSError as ex:
            raise BackupError(f"cannot write in {final.parent}: {ex.strerror}") from ex
        with conninfo_without_password(target) as (conninfo, password):
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    "--no-password",  # never prompt: there is no terminal to ask on
                    f"--file={partial}",
                    f"--dbname={conninfo}",
                ],
                "pg_dump",
                password,
            )
        listing = _run([pg_restore, "--list", str(partial)], "pg_restore --list", "")
        entries = sum(
            1 for line in listing.splitlines() if line.strip() and line[0] != ";"
        )
        move_into_place(partial, final, force=force, refused=BackupError)
    return Dump(final, entries, version)
