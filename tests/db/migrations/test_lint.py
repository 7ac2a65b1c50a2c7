"""The destructive-change lint: what `check` refuses without '-- migrate: destructive'."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from db import migrate as m
from db.migrations import lint
from db.migrations.scratch import scratch_like
from db.target import SqliteTarget
from tests.helpers import (
    LATEST,
    copy_migrations,
    needs_postgres_binaries,
    run_cli,
    service_env,
)

V2, V3 = LATEST + 1, LATEST + 2
P2, P3 = f"{V2:04d}", f"{V3:04d}"

NOTES = (
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, n TEXT, "
    "owner TEXT NOT NULL DEFAULT 'x');\n"
)

CASES = {
    "drop-table": ("DROP TABLE notes;\n", "drops table notes and all its rows"),
    "drop-column": (
        "ALTER TABLE notes DROP COLUMN body;\n",
        "drops column notes.body and its data",
    ),
    "rebuild-drops-column": (
        "-- migrate: foreign_keys=off\n"
        "CREATE TABLE new_notes (id INTEGER PRIMARY KEY, n TEXT, owner TEXT NOT NULL);\n"
        "INSERT INTO new_notes (id, n, owner) SELECT id, n, owner FROM notes;\n"
        "DROP TABLE notes;\n"
        "ALTER TABLE new_notes RENAME TO notes;\n",
        "drops column notes.body and its data (a rebuild that leaves it out)",
    ),
    "type-change": (
        "-- migrate: foreign_keys=off\n"
        "CREATE TABLE new_notes (id INTEGER PRIMARY KEY, body TEXT, n INTEGER, "
        "owner TEXT NOT NULL);\n"
        "INSERT INTO new_notes (id, body, n, owner) SELECT id, body, n, owner FROM notes;\n"
        "DROP TABLE notes;\n"
        "ALTER TABLE new_notes RENAME TO notes;\n",
        "changes the type of notes.n (TEXT -> INTEGER)",
    ),
    "not-null-without-fill": (
        "-- migrate: foreign_keys=off\n"
        "CREATE TABLE new_notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, n TEXT, "
        "owner TEXT NOT NULL);\n"
        "INSERT INTO new_notes (id, body, n, owner) SELECT id, body, n, owner FROM notes;\n"
        "DROP TABLE notes;\n"
        "ALTER TABLE new_notes RENAME TO notes;\n",
        "notes.body: becomes NOT NULL without a value for the rows already there",
    ),
    "new-not-null-placeholder": (
        "-- migrate: foreign_keys=off\n"
        "CREATE TABLE new_notes (id INTEGER PRIMARY KEY, body TEXT, n TEXT, "
        "owner TEXT NOT NULL, tag TEXT NOT NULL);\n"
        "INSERT INTO new_notes (id, body, n, owner, tag)\n"
        "  SELECT id, body, n, owner, NULL /* EDIT: value for the existing rows */\n"
        "  FROM notes;\n"
        "DROP TABLE notes;\n"
        "ALTER TABLE new_notes RENAME TO notes;\n",
        "notes.tag: new NOT NULL column without a value",
    ),
}

HARMLESS = {
    "coalesce-fill": (
        "-- migrate: foreign_keys=off\n"
        "CREATE TABLE new_notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, n TEXT, "
        "owner TEXT NOT NULL);\n"
        "INSERT INTO new_notes (id, body, n, owner)\n"
        "  SELECT id, COALESCE(body, ''), n, owner FROM notes;\n"
        "DROP TABLE notes;\n"
        "ALTER TABLE new_notes RENAME TO notes;\n"
    ),
    "add-not-null-with-default": (
        "ALTER TABLE notes ADD COLUMN tag TEXT NOT NULL DEFAULT 'none';\n"
    ),
    "rename-column": "ALTER TABLE notes RENAME COLUMN body TO text;\n",
    "rename-table": "ALTER TABLE notes RENAME TO memos;\n",
    "new-table-not-null": "CREATE TABLE tags (id INTEGER PRIMARY KEY, t TEXT NOT NULL);\n",
    "add-index": "CREATE INDEX ix_notes_n ON notes (n);\n",
}


def findings(tmp_path: Path, sql: str) -> list[lint.Finding]:
    """Lint one pending file after a notes table."""
    folder = copy_migrations(
        tmp_path / "mig", {f"{P2}_notes.sql": NOTES, f"{P3}_x.sql": sql}
    )
    found = m.discover(folder)
    with scratch_like(SqliteTarget(tmp_path / "live.sqlite3")) as scratch:
        return lint.lint(found, {V3}, scratch)


@pytest.mark.parametrize("case", sorted(CASES))
def test_destructive_change_is_found_and_refused(tmp_path: Path, case: str) -> None:
    """DROP TABLE/COLUMN, a rebuild dropping a column, a type change, NOT NULL without a fill."""
    sql, expected = CASES[case]
    (finding,) = findings(tmp_path, sql)
    assert expected in finding.what
    assert not finding.acknowledged
    assert "refused until its header says '-- migrate: destructive'" in str(finding)


@pytest.mark.parametrize("case", sorted(CASES))
def test_destructive_header_acknowledges(tmp_path: Path, case: str) -> None:
    """The same files with '-- migrate: destructive' in the header are accepted."""
    sql, _ = CASES[case]
    (finding,) = findings(tmp_path, "-- migrate: destructive\n" + sql)
    assert finding.acknowledged


@pytest.mark.parametrize("case", sorted(HARMLESS))
def test_safe_changes_are_not_findings(tmp_path: Path, case: str) -> None:
    """Fills, defaults, renames, new tables and indexes are not destructive."""
    assert findings(tmp_path, HARMLESS[case]) == []


@pytest.mark.slow  # check/makemigration start a throwaway PostgreSQL server
@needs_postgres_binaries  # check covers PostgreSQL through a throwaway server
def test_check_refuses_a_pending_drop_on_a_database_with_rows(tmp_path: Path) -> None:
    """`check` fails on a pending DROP COLUMN until the header acknowledges it; applied files are not linted."""
    folder = copy_migrations(
        tmp_path / "mig",
        {f"{P2}_note.sql": "ALTER TABLE app_metadata ADD COLUMN note TEXT;\n"},
    )
    path = tmp_path / "db.sqlite3"
    m.migrate(path, m.discover(folder))
    con = sqlite3.connect(path)
    with con:
        con.execute("INSERT INTO app_metadata VALUES ('k', 'v', '2026-01-01', 'keep?')")
    con.close()
    drop = folder / f"{P3}_drop_note.sql"
    drop.write_text("ALTER TABLE app_metadata DROP COLUMN note;\n")
    env = service_env(path, migrations_path=folder)

    refused = run_cli("check", env=env)
    assert refused.returncode == 1, refused.stdout
    assert (
        f"destructive: {P3}_drop_note.sql: drops column app_metadata.note and its data; "
        "refused until its header says '-- migrate: destructive'"
    ) in refused.stdout

    drop.write_text(
        "-- migrate: destructive\nALTER TABLE app_metadata DROP COLUMN note;\n"
    )
    accepted = run_cli("check", env=env)
    assert accepted.returncode == 0, accepted.stdout
    assert "(acknowledged: -- migrate: destructive)" in accepted.stdout
    assert run_cli("migrate", env=env).returncode == 0
    con = sqlite3.connect(path)
    assert con.execute("SELECT key, value FROM app_metadata").fetchall() == [("k", "v")]
    con.close()
    # Applied on this SQLite database; the PostgreSQL side has no live database.
    assert "sqlite: destructive" not in run_cli("check", env=env).stdout
