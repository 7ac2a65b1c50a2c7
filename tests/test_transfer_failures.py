"""transfer: every failure is one line naming the file and the cause; one at a time."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest

from db.database import open_database
from tests.helpers import REPO, copy_migrations, run_cli, service_env

pytestmark = pytest.mark.slow


def pg_env(tmp_path: Path, url: str) -> dict[str, str]:
    """The environment of a command that works on the PostgreSQL database url."""
    env = service_env(tmp_path / "unused.sqlite3", database_url=url)
    del env["SERVICE_DATABASE_PATH"]
    env["PYTHONUNBUFFERED"] = "1"
    return env


def the_one_line(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 1 with one line saying why (besides the INFO log), no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [
        line
        for line in result.stderr.strip().splitlines()
        if not (line.startswith("{") and json.loads(line)["log.level"] == "INFO")
    ]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def populated(path: Path, rows: int = 10) -> Path:
    """A migrated SQLite database with a user, a conversation and messages."""
    open_database(path).close()
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "INSERT INTO users (id, handle, display_name, created_at) "
            "VALUES (1, 'ann', 'Ann', '2026-01-01 00:00:00')"
        )
        columns = [r[1] for r in con.execute("PRAGMA table_info(conversations)")]
        owner = ", owner_id" if "owner_id" in columns else ""
        con.execute(
            f"INSERT INTO conversations (id, title, created_by, created_at, "
            f"last_message_at{owner}) VALUES (1, 't', 1, '2026-01-01 00:00:00', "
            f"'2026-01-01 00:00:00'{', 1' if owner else ''})"
        )
        con.execute("INSERT INTO memberships VALUES (1, 1, '2026-01-01 00:00:00')")
        con.executemany(
            "INSERT INTO messages (conversation_id, author_id, body, created_at) "
            "VALUES (1, 1, ?, '2026-01-01 00:00:00')",
            [(f"message {n} " + "words " * 20,) for n in range(rows)],
        )
    con.close()
    return path


def test_a_corrupt_source_is_named_not_the_default_path(
    tmp_path: Path, pg_url: str
) -> None:
    """A corrupt source file: the line names that file, not SERVICE_DATABASE_PATH's."""
    source = populated(tmp_path / "source.sqlite3", rows=2000)
    with source.open("r+b") as file:
        file.seek(8192)
        file.write(b"\xff" * 16384)
    line = the_one_line(run_cli("transfer", str(source), env=pg_env(tmp_path, pg_url)))
    assert str(source) in line
    assert "corrupt" in line or "malformed" in line
    assert "unused.sqlite3" not in line


def test_a_source_at_an_older_version_gets_the_version_refusal(
    tmp_path: Path, pg_url: str
) -> None:
    """A source migrated to 0002 only: refused for its schema version, by name."""
    older = copy_migrations(tmp_path / "older")
    for file in older.glob("*.sql"):
        if int(file.name[:4]) > 2:
            file.unlink()
    source = tmp_path / "v2.sqlite3"
    made = run_cli("migrate", env=service_env(source, migrations_path=older))
    assert made.returncode == 0, made.stderr
    line = the_one_line(run_cli("transfer", str(source), env=pg_env(tmp_path, pg_url)))
    assert "schema versions differ" in line
    assert str(source) in line


def test_rows_breaking_a_foreign_key_are_one_line(tmp_path: Path, pg_url: str) -> None:
    """A message whose author does not exist: one line naming the table; target empty."""
    source = populated(tmp_path / "source.sqlite3")
    con = sqlite3.connect(source)
    with con:  # foreign keys are off on a plain connection
        con.execute(
            "INSERT INTO messages (conversation_id, author_id, body, created_at) "
            "VALUES (1, 99, 'orphan', '2026-01-01 00:00:00')"
        )
    con.close()
    line = the_one_line(run_cli("transfer", str(source), env=pg_env(tmp_path, pg_url)))
    assert "messages" in line
    assert "foreign key" in line
    assert str(source) in line
    assert _count(pg_url, "users") == 0


def test_a_nul_character_is_one_line(tmp_path: Path, pg_url: str) -> None:
    """A value holding U+0000, which PostgreSQL text cannot store: one line naming it."""
    source = populated(tmp_path / "source.sqlite3")
    con = sqlite3.connect(source)
    with con:
        con.execute(
            "INSERT INTO app_metadata VALUES (?, ?, '2026-01-01 00:00:00')",
            ("nul", "a\x00b"),
        )
    con.close()
    line = the_one_line(run_cli("transfer", str(source), env=pg_env(tmp_path, pg_url)))
    assert "app_metadata" in line
    assert "NUL" in line or "U+0000" in line
    assert _count(pg_url, "users") == 0


@pytest.mark.timeout(180)
def test_a_second_transfer_at_once_is_refused_at_once(
    tmp_path: Path, pg_url: str
) -> None:
    """While one transfer holds its transaction open, a second is refused within seconds."""
    source = populated(tmp_path / "source.sqlite3", rows=20_000)
    env = pg_env(tmp_path, pg_url)
    first = subprocess.Popen(
        [sys.executable, "-m", "service", "transfer", str(source)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None
        # The first table copied: the transaction is open and holds rows.
        line = first.stdout.readline()
        assert "row(s)" in line, line + (first.stderr.read() if first.stderr else "")
        first.send_signal(signal.SIGSTOP)
        began = time.monotonic()
        second = run_cli("transfer", str(source), env=env, timeout=120)
        waited = time.monotonic() - began
        refused = the_one_line(second)
        assert "another transfer" in refused
        assert waited < 15, waited
    finally:
        first.send_signal(signal.SIGCONT)
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    assert _count(pg_url, "messages") == 20_000


def _count(url: str, table: str) -> int:
    con = psycopg2.connect(url)
    try:
        with con.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")
            return int(cur.fetchone()[0])
    finally:
        con.close()
