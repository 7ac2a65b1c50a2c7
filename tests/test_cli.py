"""The command line: migrate, status, new, check, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.cli import main
from service.config import Settings
from tests.helpers import LATEST, SHIPPED, copy_migrations, run_cli, service_env


def test_status_exit_codes_follow_the_state(tmp_path: Path) -> None:
    """status exits 3 with pending files, 0 when clean, and lists each version."""
    env = service_env(tmp_path / "db.sqlite3")
    pending = run_cli("status", env=env)
    assert pending.returncode == 3
    assert "0001  pending" in pending.stdout
    migrated = run_cli("migrate", env=env)
    assert migrated.returncode == 0
    assert (
        f"applied {len(SHIPPED)} migration(s): 0001_create_app_metadata.sqlite.sql, "
        in migrated.stdout
    )
    clean = run_cli("status", env=env)
    assert clean.returncode == 0
    assert "0001  applied" in clean.stdout


def test_status_does_not_create_the_database(tmp_path: Path) -> None:
    """status on a missing file reports everything pending and writes nothing."""
    db_path = tmp_path / "absent.sqlite3"
    assert run_cli("status", env=service_env(db_path)).returncode == 3
    assert not db_path.exists()


def test_new_writes_the_next_numbered_file(tmp_path: Path) -> None:
    """new NAME creates NNNN_name.sql after the highest version, and serve refuses it empty."""
    folder = copy_migrations(tmp_path / "mig")
    env = service_env(tmp_path / "db.sqlite3", migrations_path=folder)
    result = run_cli("new", "Add Users table", env=env)
    assert result.returncode == 0
    name = f"{LATEST + 1:04d}_add_users_table"
    created = folder / f"{name}.sql"
    assert result.stdout.strip() == str(created)
    assert created.read_text().startswith(f"-- {name}")
    refused = run_cli("migrate", env=env)
    assert refused.returncode == 1
    assert f"{name}.sql has no SQL yet (only comments)" in refused.stderr


def test_serve_is_injectable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """main() hands the settings to the serve function it is given."""
    monkeypatch.setenv("SERVICE_DATABASE_PATH", str(tmp_path / "x.sqlite3"))
    seen: list[Settings] = []
    assert main(["serve"], serve=lambda s: seen.append(s) or 0) == 0
    assert seen[0].database_path == tmp_path / "x.sqlite3"


def test_unknown_command_is_a_usage_error() -> None:
    """argparse rejects an unknown command with exit 2."""
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == 2


def test_backup_copies_a_consistent_file(db_path: Path, tmp_path: Path) -> None:
    """backup PATH writes a verified, self-contained copy and reports its schema version."""
    import sqlite3

    con = sqlite3.connect(db_path)
    con.execute("INSERT INTO app_metadata VALUES ('k', 'v', '2026-01-01 00:00:00')")
    con.commit()
    con.close()
    target = tmp_path / "copy.sqlite3"
    result = run_cli("backup", str(target), env=service_env(db_path))
    assert result.returncode == 0, result.stderr
    assert f"schema version {LATEST}, integrity ok" in result.stdout
    copy = sqlite3.connect(target)
    assert copy.execute("SELECT key, value FROM app_metadata").fetchall() == [
        ("k", "v")
    ]
    assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    copy.close()
    assert not target.with_name("copy.sqlite3.partial").exists()


def test_backup_refuses_bad_targets(db_path: Path, tmp_path: Path) -> None:
    """backup onto the live file, or into a missing folder, fails with one line, no traceback."""
    env = service_env(db_path)
    onto_live = run_cli("backup", str(db_path), env=env)
    assert onto_live.returncode == 1
    assert "live database" in onto_live.stderr
    missing = run_cli("backup", str(tmp_path / "no" / "such" / "x.sqlite3"), env=env)
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
