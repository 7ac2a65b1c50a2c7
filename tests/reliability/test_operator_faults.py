"""Operator mistakes that must not hurt: links, odd backup targets, modes, kill -9."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import REPO, run_cli, service_env
from tests.reliability.support import Client, db_rows, integrity, serving

pytestmark = pytest.mark.slow


def migrated(path: Path) -> Path:
    """A migrated database file at path."""
    assert run_cli("migrate", env=service_env(path)).returncode == 0
    return path


@pytest.mark.timeout(60)
def test_a_repointed_symlink_is_noticed(tmp_path: Path) -> None:
    """SERVICE_DATABASE_PATH a symlink, re-pointed while serving: /readyz and writes 503."""
    first = migrated(tmp_path / "first.sqlite3")
    second = migrated(tmp_path / "second.sqlite3")
    link = tmp_path / "current.sqlite3"
    link.symlink_to(first)
    with serving(service_env(link)) as server:
        client = Client(server.url)
        assert client.request("PUT", "/v1/metadata/before", {"value": "v"})[0] == 201
        (tmp_path / "next").symlink_to(second)
        os.replace(tmp_path / "next", link)  # ln -sfn: an atomic re-point
        status, _, payload = client.request("GET", "/readyz")
        assert status == 503
        assert str(link) in json.loads(payload)["fault"]
        status, headers, _ = client.request("PUT", "/v1/metadata/after", {"value": "v"})
        assert status == 503
        assert int(headers["retry-after"]) >= 1
        client.close()
    assert db_rows(first, "SELECT key FROM app_metadata") == [("before",)]
    assert db_rows(second, "SELECT key FROM app_metadata") == []


def char_device(path: Path) -> str:
    """A character device node like /dev/null (needs root)."""
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return "a character device"


def fifo(path: Path) -> str:
    """A named pipe."""
    os.mkfifo(path)
    return "a FIFO"


def unix_socket(path: Path) -> str:
    """A listening Unix socket's file (the socket is closed; the file stays)."""
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    return "a socket"


def link_to_device(path: Path) -> str:
    """A symlink to a character device."""
    char_device(path.with_name("node"))
    path.symlink_to(path.with_name("node"))
    return "a character device"


SPECIAL: dict[str, Callable[[Path], str]] = {
    "character device": char_device,
    "fifo": fifo,
    "socket": unix_socket,
    "symlink to a device": link_to_device,
}


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("kind", list(SPECIAL))
def test_backup_refuses_targets_that_are_not_regular_files(
    tmp_path: Path, kind: str, force: bool
) -> None:
    """A device, FIFO or socket as backup target: one line naming it, left as it was."""
    if kind in ("character device", "symlink to a device") and os.geteuid() != 0:
        pytest.skip("mknod needs root")
    db = migrated(tmp_path / "db.sqlite3")
    out = tmp_path / "out"
    out.mkdir()
    target = out / "copy.sqlite3"
    what = SPECIAL[kind](target)
    before = os.stat(target).st_mode
    result = run_cli(
        "backup", *(["--force"] if force else []), str(target), env=service_env(db)
    )
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"is {what}" in lines[0]
    assert os.stat(target).st_mode == before
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["copy.sqlite3", *(["node"] if kind == "symlink to a device" else [])]
    )


def without_dac_override() -> list[str]:
    """A prefix that runs a command as root without bypassing file modes (as a user)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_database_is_refused_at_start(tmp_path: Path, what: str) -> None:
    """A database file (0444) or folder (0555) the service cannot write: exit 1, one line."""
    data = tmp_path / "data"
    data.mkdir()
    db = migrated(data / "db.sqlite3")
    (data / "db.sqlite3").chmod(0o444 if what == "file" else 0o644)
    data.chmod(0o555 if what == "folder" else 0o755)
    try:
        result = subprocess.run(
            [*without_dac_override(), sys.executable, "-m", "service", "serve"],
            env=service_env(db),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            cwd=REPO,
        )
    finally:
        data.chmod(0o755)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    named = db if what == "file" else data
    assert f"{named} is read-only" in json.loads(lines[0])["message"]


@pytest.mark.timeout(120)
def test_a_backup_killed_mid_copy_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    """kill -9 during backup leaves a partial copy; the next backup beside it removes it."""
    db = migrated(tmp_path / "db.sqlite3")
    con = sqlite3.connect(db)
    with con:
        con.executemany(  # about 100 MB: the copy takes a while
            "INSERT INTO app_metadata VALUES (?, ?, '2026-01-01 00:00:00')",
            [(f"k{n}", os.urandom(32_000).hex()) for n in range(1600)],
        )
    con.close()
    out = tmp_path / "out"
    out.mkdir()
    killed = subprocess.Popen(
        [sys.executable, "-m", "service", "backup", str(out / "monday.sqlite3")],
        env=service_env(db),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partial = [p for p in out.iterdir() if p.name.endswith(".partial")]
        if partial and partial[0].stat().st_size > 0:
            killed.send_signal(signal.SIGKILL)
            break
        time.sleep(0.001)
    killed.wait(timeout=10)
    assert killed.returncode == -signal.SIGKILL, "the backup ended before the kill"
    assert any(p.name.endswith(".partial") for p in out.iterdir())
    done = run_cli("backup", str(out / "tuesday.sqlite3"), env=service_env(db))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["tuesday.sqlite3"]
    assert integrity(out / "tuesday.sqlite3") == "ok"
