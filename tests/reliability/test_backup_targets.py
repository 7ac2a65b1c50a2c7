"""backup refuses targets that are the live database, and never leaves a file behind."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, run_cli, service_env
from tests.mounts import in_private_mounts, private_mounts_available
from tests.reliability.support import db_rows, integrity

pytestmark = pytest.mark.slow

ROWS = 200


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A migrated database whose latest commits sit in its -wal, as while serving.

    The connection stays open with checkpoints off, so the rows exist only
    in the -wal until it closes: overwriting the -wal would lose them.
    """
    db = tmp_path / "data" / "db.sqlite3"
    db.parent.mkdir()
    assert run_cli("migrate", env=service_env(db)).returncode == 0
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA wal_autocheckpoint = 0")
    for n in range(ROWS):
        con.execute(
            "INSERT INTO app_metadata VALUES (?, ?, '2026-01-01 00:00:00')",
            (f"k{n}", "v" * 100),
        )
    yield db, con
    con.close()


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    """Names in folder other than keep (temporary copies, journals...)."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


TARGETS: dict[str, Callable[[Path, Path], str]] = {
    "the database": lambda db, tmp: str(db),
    "its -wal": lambda db, tmp: str(db) + "-wal",
    "its -shm": lambda db, tmp: str(db) + "-shm",
    "its -journal": lambda db, tmp: str(db) + "-journal",
    "its migration lock": lambda db, tmp: str(db) + ".migrate.lock",
    "a relative path to it": lambda db, tmp: os.path.relpath(db, REPO),
    "a path through ..": lambda db, tmp: str(db.parent / ".." / "data" / db.name),
}


@pytest.mark.parametrize("kind", list(TARGETS))
def test_targets_belonging_to_the_live_database_are_refused(
    live: tuple[Path, sqlite3.Connection], tmp_path: Path, kind: str
) -> None:
    """The file, its -wal/-shm/-journal/lock, relative and '..' spellings: refused."""
    db, _ = live
    before = sorted(p.name for p in db.parent.iterdir())
    wal = (db.parent / (db.name + "-wal")).read_bytes()
    result = run_cli("backup", TARGETS[kind](db, tmp_path), env=service_env(db))
    assert result.returncode == 1, result.stdout
    assert "live database" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in db.parent.iterdir()) == before
    assert (db.parent / (db.name + "-wal")).read_bytes() == wal
    assert db_rows(db, "SELECT count(*) FROM app_metadata") == [(ROWS,)]


@pytest.mark.parametrize("link", ["symlink to the database", "symlink to its -wal"])
def test_symlinks_to_live_files_are_refused(
    live: tuple[Path, sqlite3.Connection], tmp_path: Path, link: str
) -> None:
    """A symlink whose target is the database or its -wal is refused."""
    db, _ = live
    target = tmp_path / "latest.sqlite3"
    target.symlink_to(db if link.endswith("database") else Path(str(db) + "-wal"))
    result = run_cli("backup", str(target), env=service_env(db), timeout=30)
    assert result.returncode == 1
    assert "live database" in result.stderr
    assert db_rows(db, "SELECT count(*) FROM app_metadata") == [(ROWS,)]


def test_hard_link_to_the_database_is_refused(
    live: tuple[Path, sqlite3.Connection], tmp_path: Path
) -> None:
    """A hard link to the database (same inode, another name) is refused, even with --force."""
    db, _ = live
    target = tmp_path / "alias.sqlite3"
    os.link(db, target)
    result = run_cli("backup", "--force", str(target), env=service_env(db))
    assert result.returncode == 1
    assert "live database" in result.stderr
    assert db_rows(db, "SELECT count(*) FROM app_metadata") == [(ROWS,)]


def test_existing_target_needs_force(
    live: tuple[Path, sqlite3.Connection], tmp_path: Path
) -> None:
    """An existing file is refused without --force and replaced with it."""
    db, _ = live
    target = tmp_path / "copy.sqlite3"
    target.write_text("an older backup")
    refused = run_cli("backup", str(target), env=service_env(db))
    assert refused.returncode == 1
    assert "exists; pass --force to replace it" in refused.stderr
    assert target.read_text() == "an older backup"
    forced = run_cli("backup", "--force", str(target), env=service_env(db))
    assert forced.returncode == 0, forced.stderr
    assert db_rows(target, "SELECT count(*) FROM app_metadata") == [(ROWS,)]
    assert leftovers(tmp_path, {"data", "copy.sqlite3"}) == []


def test_directory_as_target_is_refused_and_leaves_nothing(
    live: tuple[Path, sqlite3.Connection], tmp_path: Path
) -> None:
    """A directory as target: one line, exit 1, nothing written in it or beside it."""
    db, _ = live
    folder = tmp_path / "backups"
    folder.mkdir()
    result = run_cli("backup", "--force", str(folder), env=service_env(db))
    assert result.returncode == 1
    assert "is a directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(folder.iterdir()) == []
    assert leftovers(tmp_path, {"data", "backups"}) == []


@pytest.mark.parametrize("force", [False, True])
def test_concurrent_backups_to_one_target_never_collide(
    live: tuple[Path, sqlite3.Connection], tmp_path: Path, force: bool
) -> None:
    """Four backups racing to one target: a sound copy, no leftovers; without --force one wins."""
    db, _ = live
    target = tmp_path / "copy.sqlite3"
    args = ["backup", *(["--force"] if force else []), str(target)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "service", *args],
            env=service_env(db),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=60), *p.communicate()) for p in processes]
    codes = sorted(code for code, _, _ in outcomes)
    print(f"force={force}: exit codes {codes}")
    if force:
        assert codes == [0, 0, 0, 0], outcomes
    else:
        assert codes == [0, 1, 1, 1], outcomes
        refusals = [err for code, _, err in outcomes if code == 1]
        assert all("pass --force" in err for err in refusals), refusals
    assert integrity(target) == "ok"
    assert db_rows(target, "SELECT count(*) FROM app_metadata") == [(ROWS,)]
    assert leftovers(tmp_path, {"data", "copy.sqlite3"}) == []


def in_namespace(setup: list[str], script: str, env: dict[str, str]) -> str:
    """Run a shell script after setup in a private mount namespace; its stdout."""
    result = subprocess.run(
        in_private_mounts(setup, ["sh", "-c", script]),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_full_disk_leaves_no_partial_file(
    live: tuple[Path, sqlite3.Connection], tmp_path: Path
) -> None:
    """A target on a full filesystem: exit 1 naming it, and the folder stays empty."""
    if not private_mounts_available():
        pytest.skip("needs `unshare -m` to mount a small tmpfs")
    db, con = live
    con.executemany(  # about 2 MiB: more than the 256 KiB filesystem holds
        "INSERT INTO app_metadata VALUES (?, ?, '2026-01-01 00:00:00')",
        [(f"big{n}", "x" * 4000) for n in range(500)],
    )
    small = tmp_path / "small"
    small.mkdir()
    python = f"{sys.executable} -m service"
    out = in_namespace(
        [f"mount -t tmpfs -o size=256k tmpfs {small}"],
        f"{python} backup {small}/copy.sqlite3 2>&1; echo rc=$?; ls -A {small}",
        service_env(db),
    )
    lines = out.strip().splitlines()
    assert lines[-1] == "rc=1", out  # ls printed nothing after it: no leftovers
    assert "full" in lines[0], out
    assert len(lines) == 2, out


def test_read_only_source_fails_cleanly(
    live: tuple[Path, sqlite3.Connection], tmp_path: Path
) -> None:
    """A database on a read-only mount cannot be opened: one line, nothing left behind."""
    if not private_mounts_available():
        pytest.skip("needs `unshare -m` to mount a folder read-only")
    db, con = live
    con.close()  # a clean close: no -shm left for a read-only reader to use
    view = tmp_path / "view"
    view.mkdir()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    python = f"{sys.executable} -m service"
    out = in_namespace(
        [f"mount --bind -o ro {db.parent} {view}", f"mount -o remount,bind,ro {view}"],
        f"{python} backup {out_dir}/copy.sqlite3 2>&1; echo rc=$?; ls -A {out_dir}",
        service_env(view / db.name),
    )
    lines = out.strip().splitlines()
    assert lines[-1] == "rc=1", out
    assert len(lines) == 2, out
    assert "read-only" in lines[0], out
