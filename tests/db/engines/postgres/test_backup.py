"""backup on PostgreSQL: pg_dump when installed, one clear line when not, no password shown."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
from pathlib import Path

import psycopg2
import pytest

from tests.helpers import LATEST, run_cli, service_env
from tests.pg import PostgresServer

pytestmark = pytest.mark.slow

needs_pg_dump = pytest.mark.skipif(
    shutil.which("pg_dump") is None or shutil.which("pg_restore") is None,
    reason="pg_dump/pg_restore not on PATH (apt-get install postgresql-client)",
)


def pg_env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    """The environment of a command on the PostgreSQL database url (no SQLite path)."""
    env = service_env(tmp_path / "unused.sqlite3", database_url=url)
    del env["SERVICE_DATABASE_PATH"]
    env.update(extra)
    return env


@pytest.fixture
def migrated_url(tmp_path: Path, pg_url: str) -> str:
    """pg_url migrated to the newest version, with one metadata row in it."""
    assert run_cli("migrate", env=pg_env(tmp_path, pg_url)).returncode == 0
    con = psycopg2.connect(pg_url)
    with con, con.cursor() as cur:
        cur.execute(
            "INSERT INTO app_metadata (key, value, updated_at) "
            "VALUES ('kept', 'yes', now())"
        )
    con.close()
    return pg_url


def _password(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


@needs_pg_dump
def test_backup_writes_a_dump_that_pg_restore_restores(
    tmp_path: Path, migrated_url: str, postgres: PostgresServer
) -> None:
    """backup PATH runs pg_dump: one line naming version and restore, a 0600 file, rows back."""
    target = tmp_path / "service.dump"

    result = run_cli("backup", str(target), env=pg_env(tmp_path, migrated_url))

    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.strip().splitlines()
    assert line.startswith(f"backup written to {target} by pg_dump (PostgreSQL) ")
    assert f"schema version {LATEST};" in line
    assert "pg_restore --dbname=URL" in line
    assert _password(migrated_url) not in result.stdout + result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []
    restored = postgres.create_database("restored_from_dump")
    try:
        subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={restored}", str(target)],
            check=True,
            capture_output=True,
        )
        con = psycopg2.connect(restored)
        with con.cursor() as cur:
            cur.execute("SELECT value FROM app_metadata WHERE key = 'kept'")
            assert cur.fetchall() == [("yes",)]
            cur.execute("SELECT max(version) FROM schema_migrations")
            assert cur.fetchone() == (LATEST,)
        con.close()
    finally:
        postgres.drop_database("restored_from_dump")


@needs_pg_dump
def test_the_password_reaches_pg_dump_through_a_passfile_not_its_arguments(
    tmp_path: Path, migrated_url: str
) -> None:
    """pg_dump's command line (readable in /proc by every user) holds no password."""
    real = shutil.which("pg_dump")
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    seen = tmp_path / "argv"
    wrapper = wrapper_dir / "pg_dump"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {seen}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    path = f"{wrapper_dir}{os.pathsep}{os.environ['PATH']}"
    env = pg_env(tmp_path, migrated_url, PATH=path)

    result = run_cli("backup", str(tmp_path / "x.dump"), env=env)

    assert result.returncode == 0, result.stderr
    argv = seen.read_text()
    assert "--format=custom" in argv
    assert "passfile=" in argv
    assert _password(migrated_url) not in argv


def test_without_pg_dump_backup_says_what_to_install_in_one_line(
    tmp_path: Path, migrated_url: str
) -> None:
    """No pg_dump on PATH: exit 1, one line naming pg_dump and the package; no file."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = pg_env(tmp_path, migrated_url, PATH=str(empty))

    result = run_cli("backup", str(tmp_path / "x.dump"), env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "pg_dump" in line
    assert "apt-get install postgresql-client" in line
    assert _password(migrated_url) not in line
    assert list(tmp_path.glob("x.dump*")) == []


@needs_pg_dump
def test_a_failing_pg_dump_is_one_line_with_the_password_scrubbed(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """pg_dump's error text echoing the password (here as the database name) shows ***."""
    secret = postgres.password
    url = postgres.url(secret)  # no such database: the error names it

    result = run_cli("backup", str(tmp_path / "x.dump"), env=pg_env(tmp_path, url))

    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("backup failed: pg_dump failed (exit 1): pg_dump: error:")
    assert 'database "***" does not exist' in line
    assert secret not in result.stdout + result.stderr
    assert list(tmp_path.glob("*.partial")) == []


@needs_pg_dump
def test_backup_refuses_an_existing_target_unless_forced(
    tmp_path: Path, migrated_url: str
) -> None:
    """An existing file is kept (exit 1, one line) unless --force replaces it."""
    target = tmp_path / "old.dump"
    target.write_text("keep me")
    env = pg_env(tmp_path, migrated_url)

    refused = run_cli("backup", str(target), env=env)
    forced = run_cli("backup", str(target), "--force", env=env)

    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"backup failed: backup target {target} exists; pass --force to replace it"
    )
    assert forced.returncode == 0, forced.stderr
    assert target.read_bytes().startswith(b"PGDMP")  # pg_dump's custom format


@needs_pg_dump
def test_backup_on_a_filesystem_without_hard_links_is_moved_into_place(
    tmp_path: Path, migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where link() fails with EXDEV (no hard links there), the dump still lands."""
    from db.engines.postgres import backup
    from db.target import PostgresTarget

    def no_links(source: object, target: object) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "link", no_links)
    done = backup.dump(PostgresTarget(migrated_url), tmp_path / "service.dump")
    assert done.path == tmp_path / "service.dump"
    assert done.entries > 0
    assert [p.name for p in tmp_path.iterdir()] == ["service.dump"]
