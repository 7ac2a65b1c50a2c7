"""The migration commands as a user runs them: plan, baseline, status, check."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from db import migrate as m
from tests.helpers import (
    LATEST,
    SHIPPED,
    copy_migrations,
    needs_postgres_binaries,
    run_cli,
    service_env,
)

V2, V3 = LATEST + 1, LATEST + 2
P2, P3 = f"{V2:04d}", f"{V3:04d}"

REBUILD = (
    "-- migrate: foreign_keys=off destructive\n"
    "-- drop app_metadata.value's NOT NULL\n"
    'CREATE TABLE "new_app_metadata" (\n'
    '  "key" TEXT NOT NULL PRIMARY KEY,\n'
    '  "value" TEXT,\n'
    '  "updated_at" DATETIME NOT NULL\n'
    ");\n"
    'INSERT INTO "new_app_metadata" SELECT * FROM "app_metadata";\n'
    'DROP TABLE "app_metadata";\n'
    'ALTER TABLE "new_app_metadata" RENAME TO "app_metadata";\n'
)


def digest(path: Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def with_rows(path: Path) -> None:
    """Put a few rows into a migrated database."""
    con = sqlite3.connect(path)
    with con:
        con.executemany(
            "INSERT INTO app_metadata VALUES (?, ?, '2026-01-01 00:00:00')",
            [("a", "1"), ("b", "2")],
        )
    con.close()


def test_plan_lists_pending_files_and_touches_nothing(tmp_path: Path) -> None:
    """migrate --plan prints files, header modes and every statement; exit 3; no change."""
    folder = copy_migrations(tmp_path / "mig")
    path = tmp_path / "db.sqlite3"
    m.migrate(path, m.discover(folder))
    with_rows(path)
    (folder / f"{P2}_nullable_value.sql").write_text(REBUILD)
    (folder / f"{P3}_tags.sql").write_text(
        "CREATE TABLE tags (id INTEGER PRIMARY KEY);\n"
    )
    env = service_env(path, migrations_path=folder)
    before = digest(path)

    result = run_cli("migrate", "--plan", env=env)

    assert result.returncode == 3, result.stdout + result.stderr
    out = result.stdout
    assert f"schema version {LATEST}" in out
    assert "2 pending migration(s)" in out
    assert f"{P2}_nullable_value.sql  [header: foreign_keys=off, destructive]" in out
    assert out.index(f"{P2}_nullable_value.sql") < out.index(f"{P3}_tags.sql")
    steps = [line.strip() for line in out.splitlines()]
    rebuild = steps[
        steps.index("PRAGMA foreign_keys = OFF  -- outside the transaction") :
    ]
    assert rebuild[:2] == [
        "PRAGMA foreign_keys = OFF  -- outside the transaction",
        "BEGIN IMMEDIATE",
    ]
    assert '[1] CREATE TABLE "new_app_metadata" (' in steps
    assert '[4] ALTER TABLE "new_app_metadata" RENAME TO "app_metadata"' in steps
    assert "PRAGMA foreign_key_check  -- any violation rolls back" in steps
    assert "[1] CREATE TABLE tags (id INTEGER PRIMARY KEY)" in steps
    assert digest(path) == before
    assert m.inspect(path, m.discover(folder)).pending == [V2, V3]

    assert run_cli("migrate", env=env).returncode == 0
    done = run_cli("migrate", "--plan", env=env)
    assert done.returncode == 0
    assert "nothing pending" in done.stdout
    con = sqlite3.connect(path)
    assert con.execute(
        "SELECT key, value FROM app_metadata ORDER BY key"
    ).fetchall() == [
        ("a", "1"),
        ("b", "2"),
    ]
    con.close()


def test_plan_on_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    """migrate --plan before the first start lists every file and leaves no file behind."""
    path = tmp_path / "absent" / "db.sqlite3"
    result = run_cli("migrate", "--plan", env=service_env(path))
    assert result.returncode == 3
    assert "nothing applied yet" in result.stdout
    assert f"{len(SHIPPED)} pending migration(s)" in result.stdout
    assert not path.parent.exists()


def test_plan_says_why_migrate_would_refuse(tmp_path: Path) -> None:
    """An edited applied file: --plan names the refusal and exits 1."""
    folder = copy_migrations(
        tmp_path / "mig", {f"{P2}_t.sql": "CREATE TABLE t (id INTEGER);\n"}
    )
    path = tmp_path / "db.sqlite3"
    m.migrate(path, m.discover(folder))
    (folder / f"{P2}_t.sql").write_text("CREATE TABLE t (id INTEGER, x TEXT);\n")
    result = run_cli("migrate", "--plan", env=service_env(path, migrations_path=folder))
    assert result.returncode == 1
    assert "migrate would refuse:" in result.stdout
    assert "was edited after it was applied" in result.stdout


def hand_made(path: Path, folder: Path, upto: int) -> None:
    """A database made without the runner: files 1..upto run by hand, then rows."""
    con = sqlite3.connect(path)
    for migration in m.discover(folder)[:upto]:
        con.executescript(migration.sql)
    con.close()
    with_rows(path)


def test_baseline_adopts_a_matching_database_and_keeps_its_rows(tmp_path: Path) -> None:
    """baseline N records files 1..N when the schema matches; migrate then applies the rest."""
    folder = copy_migrations(tmp_path / "mig")
    path = tmp_path / "db.sqlite3"
    hand_made(path, folder, LATEST)
    (folder / f"{P2}_tags.sql").write_text(
        "CREATE TABLE tags (id INTEGER PRIMARY KEY);\n"
    )
    env = service_env(path, migrations_path=folder)
    refused = run_cli("migrate", env=env)
    assert refused.returncode == 1
    assert "python -m service baseline N" in refused.stderr

    adopted = run_cli("baseline", str(LATEST), env=env)

    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert f"baselined {len(SHIPPED)} version(s)" in adopted.stdout
    con = sqlite3.connect(path)
    assert con.execute(
        "SELECT version, how FROM schema_migrations ORDER BY version"
    ).fetchall() == [(v, "baselined") for v in SHIPPED]
    assert con.execute(
        "SELECT DISTINCT action FROM schema_migrations_log"
    ).fetchall() == [("baseline",)]
    con.close()
    assert m.inspect(path, m.discover(folder)).pending == [V2]
    assert run_cli("migrate", env=env).returncode == 0
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM app_metadata").fetchone() == (2,)
    assert con.execute(
        "SELECT how FROM schema_migrations WHERE version = ?", (V2,)
    ).fetchone() == ("applied",)
    con.close()


def test_baseline_refuses_a_different_schema_and_records_nothing(
    tmp_path: Path,
) -> None:
    """A schema that differs is named table and column, and no history is written."""
    folder = copy_migrations(tmp_path / "mig")
    path = tmp_path / "db.sqlite3"
    hand_made(path, folder, LATEST)
    con = sqlite3.connect(path)
    con.executescript(
        "ALTER TABLE users ADD COLUMN nickname TEXT;\n"
        "DROP INDEX ix_messages_author;\n"
        "DROP INDEX ix_search_terms_message;\n"
    )
    con.close()
    before = digest(path)

    result = run_cli(
        "baseline", str(LATEST), env=service_env(path, migrations_path=folder)
    )

    assert result.returncode == 1
    assert "nothing recorded" in result.stderr
    assert "users.nickname: column in the database, not from the files" in result.stderr
    assert (
        "messages: index ix_messages_author (author_id) from the files, missing"
        in result.stderr
    )
    assert (
        "search_terms: index ix_search_terms_message (message_id) from the files, "
        "missing" in result.stderr
    )
    assert digest(path) == before
    con = sqlite3.connect(path)
    assert ("schema_migrations",) not in con.execute(
        "SELECT name FROM sqlite_master"
    ).fetchall()
    con.close()


def test_baseline_compares_types_nullability_and_keys(tmp_path: Path) -> None:
    """Pony's own create_tables DDL leaves app_metadata.key nullable: baseline 1 says so."""
    path = tmp_path / "db.sqlite3"
    con = sqlite3.connect(path)
    con.executescript(
        'CREATE TABLE "app_metadata" ("key" TEXT PRIMARY KEY, "value" TEXT NOT NULL, '
        '"updated_at" TIMESTAMP NOT NULL);'
    )
    con.close()
    with_rows(path)
    result = run_cli("baseline", "1", env=service_env(path))
    assert result.returncode == 1
    assert (
        "app_metadata.key: NOT NULL from the files, nullable in the database"
        in result.stderr
    )
    assert (
        "app_metadata.updated_at: type DATETIME from the files, TIMESTAMP in the database"
        in result.stderr
    )


def test_baseline_refuses_a_database_with_history(tmp_path: Path) -> None:
    """A database the runner already migrated is not baselined again."""
    path = tmp_path / "db.sqlite3"
    m.migrate(path, m.discover())
    result = run_cli("baseline", "1", env=service_env(path))
    assert result.returncode == 1
    assert "already has a migration history" in result.stderr


def critical(stderr: str) -> list[str]:
    """The CRITICAL log lines of a command's stderr."""
    return [line for line in stderr.splitlines() if '"CRITICAL"' in line]


@pytest.mark.slow  # check/makemigration start a throwaway PostgreSQL server
@needs_postgres_binaries  # check covers PostgreSQL through a throwaway server
def test_check_and_makemigration_check_agree(tmp_path: Path) -> None:
    """A table no entity declares fails both check and makemigration --check; the shipped files pass both."""
    shipped = service_env(
        tmp_path / "clean.sqlite3",
        migrations_path=copy_migrations(tmp_path / "shipped"),
    )
    assert run_cli("check", env=shipped).returncode == 0
    assert run_cli("makemigration", "--check", env=shipped).returncode == 0
    folder = copy_migrations(
        tmp_path / "mig",
        {f"{P2}_legacy.sql": "CREATE TABLE legacy (id INTEGER PRIMARY KEY);\n"},
    )
    env = service_env(tmp_path / "db.sqlite3", migrations_path=folder)
    check = run_cli("check", env=env)
    make = run_cli("makemigration", "--check", env=env)
    assert check.returncode == make.returncode == 1
    assert 'drop table "legacy"' in check.stdout
    assert 'drop table "legacy"' in make.stdout


@needs_postgres_binaries  # check covers PostgreSQL through a throwaway server
def test_check_does_not_report_the_scratch_database(tmp_path: Path) -> None:
    """check prints no 'applied migration' lines and creates no database."""
    path = tmp_path / "live.sqlite3"
    folder = copy_migrations(tmp_path / "mig")
    result = run_cli("check", env=service_env(path, migrations_path=folder))
    assert result.returncode == 0, result.stdout
    assert "applied migration" not in result.stdout + result.stderr
    assert not path.exists()


@needs_postgres_binaries  # check covers PostgreSQL through a throwaway server
def test_comment_only_file_is_pending_without_sql(tmp_path: Path) -> None:
    """A file made by `new`: status says 'pending, no SQL yet'; migrate, serve and check refuse in one line."""
    folder = copy_migrations(tmp_path / "mig")
    path = tmp_path / "db.sqlite3"
    m.migrate(path, m.discover(folder))
    with_rows(path)
    env = service_env(path, migrations_path=folder)
    assert run_cli("new", "add widgets", env=env).returncode == 0
    name = f"{P2}_add_widgets.sql"

    status = run_cli("status", env=env)
    assert status.returncode == 3, status.stdout + status.stderr
    assert f"{P2}  pending, no SQL yet  {name}" in status.stdout
    refusal = f"{name} has no SQL yet (only comments): write its statements, or delete the file"
    for command in ("migrate", "serve"):
        result = run_cli(command, env=env)
        assert result.returncode == 1
        assert len(critical(result.stderr)) == 1
        assert refusal in critical(result.stderr)[0]
    check = run_cli("check", env=env)
    assert check.returncode == 1
    assert refusal in check.stdout
    plan = run_cli("migrate", "--plan", env=env)
    assert plan.returncode == 1
    assert refusal in plan.stdout
    assert m.inspect(path, m.discover(folder)).pending == [V2]

    (folder / name).write_text("CREATE TABLE widgets (id INTEGER PRIMARY KEY);\n")
    assert run_cli("migrate", env=env).returncode == 0


def test_two_branches_adding_one_version_get_their_own_advice(tmp_path: Path) -> None:
    """Version N applied from another branch's file: a conflict, not 'edited', and accept-checksum refuses."""
    theirs = copy_migrations(
        tmp_path / "theirs", {f"{P2}_add_tags.sql": "CREATE TABLE tags (id INTEGER);\n"}
    )
    path = tmp_path / "db.sqlite3"
    m.migrate(path, m.discover(theirs))
    ours = copy_migrations(
        tmp_path / "ours", {f"{P2}_add_likes.sql": "CREATE TABLE likes (id INTEGER);\n"}
    )
    env = service_env(path, migrations_path=ours)

    result = run_cli("migrate", env=env)
    assert result.returncode == 1
    (line,) = critical(result.stderr)
    assert f"applied from {P2}_add_tags.sql" in line
    assert f"this code's version {V2} is {P2}_add_likes.sql" in line
    assert f"two branches both added version {V2}" in line
    assert "was edited" not in line
    status = run_cli("status", env=env)
    assert status.returncode == 4
    assert "CONFLICT" in status.stdout
    assert f"(the database applied {P2}_add_tags.sql)" in status.stdout
    accept = run_cli("accept-checksum", str(V2), env=env)
    assert accept.returncode == 1
    assert "two branches both added" in accept.stderr


def test_renumbered_file_is_named(tmp_path: Path) -> None:
    """The applied content now lives under another number: the message says where."""
    tags = "CREATE TABLE tags (id INTEGER);\n"
    first = copy_migrations(tmp_path / "first", {f"{P2}_add_tags.sql": tags})
    path = tmp_path / "db.sqlite3"
    m.migrate(path, m.discover(first))
    moved = copy_migrations(
        tmp_path / "moved",
        {
            f"{P2}_add_tags.sql": "CREATE TABLE tags (id INTEGER, extra TEXT);\n",
            f"{P3}_add_tags_again.sql": tags,
        },
    )
    result = run_cli("migrate", env=service_env(path, migrations_path=moved))
    assert result.returncode == 1
    assert (
        f"what was applied is now {P3}_add_tags_again.sql" in critical(result.stderr)[0]
    )


def test_status_never_prints_none(tmp_path: Path) -> None:
    """Before the first start status says the file does not exist and nothing is applied."""
    path = tmp_path / "db.sqlite3"
    result = run_cli("status", env=service_env(path))
    assert result.returncode == 3
    assert "None" not in result.stdout
    assert f"database: {path} (does not exist yet)" in result.stdout
    assert "schema version: none (nothing applied)" in result.stdout


def test_check_names_a_version_with_one_half(tmp_path: Path) -> None:
    """A version with only its .sqlite.sql half fails check, naming the missing half."""
    folder = copy_migrations(
        tmp_path / "mig", {f"{P2}_tags.sqlite.sql": "CREATE TABLE tags (id INTEGER);\n"}
    )
    result = run_cli(
        "check", env=service_env(tmp_path / "db.sqlite3", migrations_path=folder)
    )
    assert result.returncode == 1
    assert (
        f"{P2}_tags.sqlite.sql has no {P2}_tags.postgres.sql half: version {V2} needs "
        "both halves" in result.stdout
    )
