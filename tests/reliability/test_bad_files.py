"""A bad SERVICE_DATABASE_PATH stops every command with one line, never a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import REPO, run_cli, service_env
from tests.mounts import in_private_mounts, private_mounts_available

pytestmark = pytest.mark.slow

COMMANDS = ["serve", "migrate", "status", "check", "backup", "accept-checksum"]


def arguments(command: str, tmp_path: Path) -> list[str]:
    """The command line for command (backup needs a target, accept-checksum a version)."""
    if command == "backup":
        return ["backup", str(tmp_path / "out" / "copy.sqlite3")]
    if command == "accept-checksum":
        return ["accept-checksum", "1"]
    return [command]


def migrated_copy(tmp_path: Path, name: str) -> Path:
    """A migrated database file at tmp_path/name."""
    path = tmp_path / name
    assert run_cli("migrate", env=service_env(path)).returncode == 0
    return path


def directory(tmp_path: Path) -> Path:
    """SERVICE_DATABASE_PATH is a directory."""
    path = tmp_path / "db.sqlite3"
    path.mkdir()
    return path


def not_a_database(tmp_path: Path) -> Path:
    """A file of random bytes."""
    path = tmp_path / "db.sqlite3"
    path.write_bytes(bytes(range(256)) * 32)
    return path


def corrupt(tmp_path: Path) -> Path:
    """An SQLite file whose pages after the first were overwritten."""
    path = migrated_copy(tmp_path, "db.sqlite3")
    with path.open("r+b") as file:
        file.seek(4096)
        file.write(b"\xff" * 8192)
    return path


def parent_is_a_file(tmp_path: Path) -> Path:
    """The path's parent is a regular file."""
    (tmp_path / "plain.txt").write_text("x")
    return tmp_path / "plain.txt" / "db.sqlite3"


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "directory": (directory, "is a directory"),
    "not a database": (not_a_database, "is not an SQLite database"),
    "corrupt": (corrupt, "is corrupt"),
    "parent is a file": (parent_is_a_file, "is a file, not a directory"),
}


def the_one_line(stderr: str) -> str:
    """stderr holds exactly one line, with no traceback; its message.

    A JSON log line at CRITICAL, or backup's own plain line.
    """
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr[-2000:]
    assert "Traceback" not in stderr
    if lines[0].startswith("backup to "):
        return lines[0].replace("backup to ", "backup failed: ", 1)
    entry = json.loads(lines[0])
    assert entry["log.level"] == "CRITICAL"
    return str(entry["message"])


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", list(CASES))
def test_bad_database_file_is_one_line_and_exit_1(
    tmp_path: Path, case: str, command: str
) -> None:
    """A directory, a non-database, a corrupt file, a file as parent: one line, exit 1."""
    make, cause = CASES[case]
    path = make(tmp_path)
    (tmp_path / "out").mkdir()
    result = run_cli(*arguments(command, tmp_path), env=service_env(path), timeout=30)
    assert result.returncode == 1, result.stderr
    message = the_one_line(result.stderr)
    assert message.startswith(f"{command} failed: ")
    assert cause in message


@pytest.mark.parametrize(
    ("command", "existing"),
    [
        (command, existing)
        for command in ("serve", "migrate", "status", "accept-checksum")
        for existing in (True, False)
        # status on a missing file reads nothing: it reports every file pending.
        if existing or command != "status"
    ],
)
def test_read_only_mount_is_one_line_naming_it(
    tmp_path: Path, command: str, existing: bool
) -> None:
    """The database's folder on a read-only mount: one line saying so, exit 1."""
    if not private_mounts_available():
        pytest.skip("needs `unshare -m` to mount a folder read-only")
    data = tmp_path / "data"
    data.mkdir()
    if existing:
        shutil.move(migrated_copy(tmp_path, "db.sqlite3"), data / "db.sqlite3")
    view = tmp_path / "view"
    view.mkdir()
    command_line = in_private_mounts(
        [f"mount --bind -o ro {data} {view}", f"mount -o remount,bind,ro {view}"],
        [sys.executable, "-m", "service", *arguments(command, tmp_path)],
    )
    result = subprocess.run(
        command_line,
        env=service_env(view / "db.sqlite3"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 1, result.stderr
    message = the_one_line(result.stderr)
    assert f"{view} is read-only" in message
