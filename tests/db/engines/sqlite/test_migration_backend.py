"""The migration runner's SQLite-only rules, against real SQLite files.

What both engines share is in test_migrations.py (the `engine` fixture).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from db import migrate as m
from db.database import open_database
from db.engines.sqlite import connection as seam
from db.engines.sqlite import introspection as sqlite_schema
from db.errors import MigrationError
from tests.helpers import (
    LATEST,
    MIGRATIONS,
    SHIPPED,
    copy_migrations,
    launch_serve,
    run_cli,
    service_env,
    wait_ready,
)

PARENT_CHILD = """
CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE child (
  id INTEGER PRIMARY KEY,
  parent_id INTEGER NOT NULL REFERENCES parent (id) ON DELETE CASCADE
);
INSERT INTO parent (id, name) VALUES (1, 'one'), (2, 'two');
INSERT INTO child (id, parent_id) VALUES (10, 1), (20, 2);
"""


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Run a query on a fresh connection."""
    con = sqlite3.connect(path)
    try:
        return [tuple(r) for r in con.execute(sql)]
    finally:
        con.close()


def history(path: Path) -> list[int]:
    """Versions in the history table."""
    return [
        r[0]
        for r in rows(path, "SELECT version FROM schema_migrations ORDER BY version")
    ]


# Versions of the files the tests add after the shipped ones.
V2, V3 = LATEST + 1, LATEST + 2
P2, P3 = f"{V2:04d}", f"{V3:04d}"


def tables(path: Path) -> set[str]:
    """User tables in the file."""
    return {
        r[0] for r in rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")
    }


def test_failed_migration_stops_serve_with_one_line(tmp_path: Path) -> None:
    """serve exits non-zero with one line naming the file and the failing statement."""
    folder = copy_migrations(
        tmp_path / "mig", {f"{P2}_bad.sql": "CREATE TABLE oops (;\n"}
    )
    env = service_env(tmp_path / "db.sqlite3", migrations_path=folder)
    result = run_cli("serve", env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    fatal = [line for line in lines if '"CRITICAL"' in line]
    assert len(fatal) == 1
    assert f"{P2}_bad.sql failed at statement 1" in fatal[0]
    assert "CREATE TABLE oops" in fatal[0]


@pytest.mark.parametrize(
    ("sql", "keyword"),
    [
        ("BEGIN;\nCREATE TABLE x (id INTEGER);\nCOMMIT;\n", "BEGIN"),
        (
            "PRAGMA foreign_keys = OFF;\nCREATE TABLE x (id INTEGER);\n",
            "PRAGMA FOREIGN_KEYS",
        ),
        ("VACUUM;\n", "VACUUM"),
    ],
)
def test_transaction_breaking_statements_are_refused(
    tmp_path: Path, sql: str, keyword: str
) -> None:
    """Statements that would break the runner's transaction are refused at discovery."""
    folder = copy_migrations(tmp_path / "mig", {f"{P2}_x.sql": sql})
    with pytest.raises(MigrationError, match=keyword):
        m.discover(folder)


def test_database_ahead_of_code_starts_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Versions in the database with no file (older image, newer DB) warn but start."""
    newer = copy_migrations(
        tmp_path / "newer", {f"{P2}_extra.sql": "CREATE TABLE extra (id INTEGER);\n"}
    )
    path = tmp_path / "db.sqlite3"
    m.migrate(path, m.discover(newer))
    with caplog.at_level(logging.WARNING, logger="db.migrate"):
        database = open_database(path)  # the packaged files only
    try:
        assert any("does not ship" in r.getMessage() for r in caplog.records)
        assert database.state({1: "x", V2: "y"}).unknown == [V2]
    finally:
        database.close()


def test_rebuild_with_foreign_keys_off_keeps_child_rows(tmp_path: Path) -> None:
    """A declared rebuild of a parent table does not cascade-delete its children."""
    folder = copy_migrations(
        tmp_path / "mig",
        {
            f"{P2}_parent_child.sql": PARENT_CHILD,
            f"{P3}_rebuild_parent.sql": (
                "-- migrate: foreign_keys=off\n"
                "CREATE TABLE new_parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT);\n"
                "INSERT INTO new_parent (id, name) SELECT id, name FROM parent;\n"
                "DROP TABLE parent;\n"
                "ALTER TABLE new_parent RENAME TO parent;\n"
            ),
        },
    )
    path = tmp_path / "db.sqlite3"
    m.migrate(path, m.discover(folder))
    assert history(path) == [*SHIPPED, V2, V3]
    assert rows(path, "SELECT id, parent_id FROM child ORDER BY id") == [
        (10, 1),
        (20, 2),
    ]
    assert rows(path, "PRAGMA foreign_key_check") == []


def test_rebuild_that_violates_foreign_keys_rolls_back(tmp_path: Path) -> None:
    """A rebuild leaving dangling references is rolled back whole and named."""
    folder = copy_migrations(
        tmp_path / "mig",
        {
            f"{P2}_parent_child.sql": PARENT_CHILD,
            f"{P3}_lossy_rebuild.sql": (
                "-- migrate: foreign_keys=off\n"
                "CREATE TABLE new_parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
                "INSERT INTO new_parent (id, name) SELECT id, name FROM parent WHERE id = 1;\n"
                "DROP TABLE parent;\n"
                "ALTER TABLE new_parent RENAME TO parent;\n"
            ),
        },
    )
    path = tmp_path / "db.sqlite3"
    with pytest.raises(
        MigrationError, match=rf"{P3}_lossy_rebuild\.sql leaves 1 foreign key violation"
    ):
        m.migrate(path, m.discover(folder))
    assert history(path) == [*SHIPPED, V2]
    assert rows(path, "SELECT id, name FROM parent ORDER BY id") == [
        (1, "one"),
        (2, "two"),
    ]
    assert "new_parent" not in tables(path)


def test_foreign_keys_setting_is_restored_after_a_rebuild(tmp_path: Path) -> None:
    """The runner's connection has foreign keys on again after the rebuild, even on failure."""
    con = seam.connect(tmp_path / "x.sqlite3")
    inside: list[int] = []

    def failing_rebuild() -> None:
        with sqlite_schema.foreign_keys_disabled(con):
            inside.append(con.execute("PRAGMA foreign_keys").fetchone()[0])
            raise RuntimeError("boom")

    try:
        with pytest.raises(RuntimeError):
            failing_rebuild()
        assert inside == [0]
        assert con.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        con.close()


def test_off_mode_on_missing_file_refuses(tmp_path: Path) -> None:
    """SERVICE_MIGRATE=off does not create a database that is not there."""
    with pytest.raises(Exception, match="does not exist"):
        open_database(tmp_path / "absent.sqlite3", migrate="off")
    assert not (tmp_path / "absent.sqlite3").exists()


def test_trigger_bodies_and_comments_split_correctly(tmp_path: Path) -> None:
    """Statements with ';' in strings and trigger bodies apply as written."""
    folder = copy_migrations(
        tmp_path / "mig",
        {
            f"{P2}_trigger.sql": (
                "-- a comment; with a semicolon\n"
                "CREATE TABLE audit (note TEXT DEFAULT 'a;b');\n"
                "CREATE TRIGGER app_metadata_audit AFTER INSERT ON app_metadata BEGIN\n"
                "  INSERT INTO audit (note) VALUES ('inserted; ' || NEW.key);\n"
                "END;\n"
                "/* trailing comment */\n"
            ),
        },
    )
    path = tmp_path / "db.sqlite3"
    m.migrate(path, m.discover(folder))
    con = sqlite3.connect(path)
    con.execute("INSERT INTO app_metadata VALUES ('k', 'v', '2026-01-01 00:00:00')")
    con.commit()
    con.close()
    assert rows(path, "SELECT note FROM audit") == [("inserted; k",)]


@pytest.mark.slow
def test_four_processes_starting_together_apply_each_file_once(tmp_path: Path) -> None:
    """Four serve processes on one fresh database: all ready, each file applied once."""
    extra = {
        f"{v:04d}_t{v}.sql": f"CREATE TABLE t{v} (id INTEGER PRIMARY KEY);\n"
        f"INSERT INTO t{v} (id) VALUES ({v});\n"
        for v in range(V2, 31)
    }
    folder = copy_migrations(tmp_path / "mig", extra)
    path = tmp_path / "db.sqlite3"
    env = service_env(path, migrations_path=folder)
    # Launch all four before waiting for any, so that their migrations race.
    servers = [launch_serve(env) for _ in range(4)]
    try:
        for server in servers:
            wait_ready(server)
        for server in servers:
            status, _, body = server.request("GET", "/readyz")
            assert (status, body["schema_version"], body["pending"]) == (200, 30, [])
    finally:
        codes = [server.stop() for server in servers]
    assert codes == [0, 0, 0, 0]
    assert history(path) == SHIPPED + list(range(V2, 31))
    for v in range(V2, 31):
        assert rows(path, f"SELECT id FROM t{v}") == [(v,)]
    applied = [
        line
        for server in servers
        for line in server.lines
        if str(line.get("message", "")).startswith("applied migration")
    ]
    assert len(applied) == len(SHIPPED) + len(range(V2, 31))


def test_database_from_the_plain_file_names_keeps_starting(tmp_path: Path) -> None:
    """Applied as 0001_x.sql before the files became .sqlite.sql halves: same versions, nothing edited."""
    old = tmp_path / "old"
    old.mkdir()
    for file in MIGRATIONS.glob("*.sqlite.sql"):
        (old / file.name.replace(".sqlite.sql", ".sql")).write_bytes(file.read_bytes())
    path = tmp_path / "db.sqlite3"
    m.migrate(path, m.discover(old))
    assert rows(path, "SELECT name FROM schema_migrations WHERE version = 1") == [
        ("0001_create_app_metadata.sql",)
    ]
    state = m.migrate(path, m.discover(copy_migrations(tmp_path / "new")))
    assert (state.pending, state.edited) == ([], [])
    database = open_database(path)
    database.close()
    result = run_cli("status", env=service_env(path))
    assert result.returncode == 0, result.stdout
