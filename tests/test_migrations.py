"""The migration runner against real SQLite files."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from db import MigrationError, open_database
from db import migrate as m
from db.dialects import sqlite as seam
from db.dialects import sqlite_schema
from tests.helpers import (
    LATEST,
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


def test_fresh_database_gets_every_migration_once_with_history(tmp_path: Path) -> None:
    """A fresh file gets every migration and a history row with checksum and timing."""
    path = tmp_path / "db.sqlite3"
    state = m.migrate(path, m.discover())
    assert state.pending == []
    assert state.version == LATEST
    row, *_ = rows(
        path,
        "SELECT version, name, checksum, applied_at, execution_ms "
        "FROM schema_migrations ORDER BY version",
    )
    assert row[0] == 1
    assert row[1] == "0001_create_app_metadata.sql"
    assert str(row[2]).startswith("sha256-lf:")
    assert str(row[3]).endswith("Z")
    assert float(row[4]) >= 0  # type: ignore[arg-type]
    again = m.migrate(path, m.discover())
    assert again.applied == SHIPPED


def test_checksum_ignores_line_endings_and_bom() -> None:
    """CRLF, CR and a UTF-8 BOM do not change a file's checksum; content does."""
    text = "CREATE TABLE t (x INTEGER);\n-- done\n"
    plain = m.checksum(m.normalise(text.encode()))
    assert (
        m.checksum(m.normalise(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()))
        == plain
    )
    assert m.checksum(m.normalise(text.replace("\n", "\r").encode())) == plain
    assert m.checksum(m.normalise(text.replace("x", "y").encode())) != plain


def test_failed_file_leaves_no_trace_and_is_retried(tmp_path: Path) -> None:
    """A failing file rolls back entirely, names file and statement, and applies once fixed."""
    folder = copy_migrations(
        tmp_path / "mig",
        {
            f"{P2}_half.sql": "CREATE TABLE first_half (id INTEGER PRIMARY KEY);\n"
            "INSERT INTO missing_table VALUES (1);\n",
        },
    )
    path = tmp_path / "db.sqlite3"
    with pytest.raises(MigrationError) as caught:
        m.migrate(path, m.discover(folder))
    message = str(caught.value)
    assert f"{P2}_half.sql" in message
    assert "statement 2" in message
    assert "missing_table" in message
    assert "first_half" not in tables(path)
    assert history(path) == SHIPPED
    assert rows(path, "SELECT version, action FROM schema_migrations_log") == [
        (V2, "failed")
    ]

    (folder / f"{P2}_half.sql").write_text(
        "CREATE TABLE first_half (id INTEGER PRIMARY KEY);\n"
    )
    m.migrate(path, m.discover(folder))
    assert history(path) == [*SHIPPED, V2]
    assert "first_half" in tables(path)


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


def test_edited_file_is_refused_until_accepted(tmp_path: Path) -> None:
    """An applied file whose content changed stops start-up; accept-checksum clears it."""
    folder = copy_migrations(
        tmp_path / "mig", {f"{P2}_t.sql": "CREATE TABLE t (id INTEGER);\n"}
    )
    path = tmp_path / "db.sqlite3"
    m.migrate(path, m.discover(folder))
    (folder / f"{P2}_t.sql").write_text("CREATE TABLE t (id INTEGER, extra TEXT);\n")
    with pytest.raises(
        MigrationError, match=rf"{P2}_t\.sql was edited after it was applied"
    ):
        m.migrate(path, m.discover(folder))
    with pytest.raises(MigrationError, match=f"accept-checksum {V2}"):
        open_database(path, migrations_source=folder)

    env = service_env(path, migrations_path=folder)
    assert run_cli("status", env=env).returncode == 4
    accepted = run_cli("accept-checksum", str(V2), env=env)
    assert accepted.returncode == 0, accepted.stderr
    assert run_cli("status", env=env).returncode == 0
    assert [r[0] for r in rows(path, "SELECT action FROM schema_migrations_log")] == [
        "accept_checksum"
    ]


def test_line_ending_change_is_not_an_edit(tmp_path: Path) -> None:
    """Converting an applied file to CRLF with a BOM does not count as an edit."""
    folder = copy_migrations(tmp_path / "mig")
    path = tmp_path / "db.sqlite3"
    m.migrate(path, m.discover(folder))
    file = folder / "0001_create_app_metadata.sql"
    file.write_bytes(b"\xef\xbb\xbf" + file.read_bytes().replace(b"\n", b"\r\n"))
    assert m.migrate(path, m.discover(folder)).edited == []


def test_pending_file_below_newest_is_applied_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file numbered below the newest applied one is applied, never skipped."""
    folder = copy_migrations(
        tmp_path / "mig", {f"{P3}_c.sql": "CREATE TABLE c (id INTEGER);\n"}
    )
    path = tmp_path / "db.sqlite3"
    m.migrate(path, m.discover(folder))
    (folder / f"{P2}_b.sql").write_text("CREATE TABLE b (id INTEGER);\n")
    with caplog.at_level(logging.WARNING, logger="db.migrate"):
        state = m.migrate(path, m.discover(folder))
    assert state.applied == [*SHIPPED, V2, V3]
    assert "b" in tables(path)
    assert any("out of order" in r.getMessage() for r in caplog.records)
    assert rows(path, "SELECT version, action FROM schema_migrations_log") == [
        (V2, "out_of_order")
    ]


def test_duplicate_version_is_an_error(tmp_path: Path) -> None:
    """Two files with one version number are refused, both named."""
    folder = copy_migrations(
        tmp_path / "mig",
        {
            f"{P2}_a.sql": "CREATE TABLE a (id INTEGER);\n",
            f"{P2}_b.sql": "CREATE TABLE b (id INTEGER);\n",
        },
    )
    with pytest.raises(
        MigrationError, match=rf"version {V2}: {P2}_a\.sql and {P2}_b\.sql"
    ):
        m.discover(folder)


def test_badly_named_sql_file_is_an_error(tmp_path: Path) -> None:
    """A .sql file that does not follow NNNN_slug.sql is refused, not ignored."""
    folder = copy_migrations(tmp_path / "mig", {"2-add-things.sql": "SELECT 1;\n"})
    with pytest.raises(MigrationError, match=r"2-add-things\.sql"):
        m.discover(folder)


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


def test_verify_mode_refuses_pending_and_writes_nothing(tmp_path: Path) -> None:
    """SERVICE_MIGRATE=verify refuses to start while anything is pending."""
    path = tmp_path / "db.sqlite3"
    with pytest.raises(MigrationError, match="pending migrations"):
        open_database(path, migrate="verify")
    assert "app_metadata" not in tables(path)


def test_off_mode_on_missing_file_refuses(tmp_path: Path) -> None:
    """SERVICE_MIGRATE=off does not create a database that is not there."""
    with pytest.raises(Exception, match="does not exist"):
        open_database(tmp_path / "absent.sqlite3", migrate="off")
    assert not (tmp_path / "absent.sqlite3").exists()


def test_untracked_database_with_tables_is_refused(tmp_path: Path) -> None:
    """A database made by something else is not migrated by guesswork."""
    path = tmp_path / "db.sqlite3"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE app_metadata (key TEXT)")
    con.close()
    with pytest.raises(MigrationError, match="no migration history"):
        m.migrate(path, m.discover())


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
    assert history(path) == list(range(1, 31))
    for v in range(V2, 31):
        assert rows(path, f"SELECT id FROM t{v}") == [(v,)]
    applied = [
        line
        for server in servers
        for line in server.lines
        if str(line.get("msg", "")).startswith("applied migration")
    ]
    assert len(applied) == 30


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("-- migrate: foreign_key=off\n", "unknown directive 'foreign_key'"),
        ("-- migrate: foreign_keys=on\n", "foreign_keys takes the value off"),
        ("-- migrate: lock_timeout=soon\n", "lock_timeout takes a duration"),
        (
            "CREATE TABLE x (id INTEGER);\n-- migrate: destructive\n",
            "belong in the header",
        ),
    ],
    ids=["unknown-key", "bad-value", "bad-duration", "after-first-statement"],
)
def test_bad_header_directive_is_an_error(
    tmp_path: Path, header: str, message: str
) -> None:
    """A mistyped or misplaced '-- migrate:' line is refused, never ignored."""
    folder = copy_migrations(
        tmp_path / "mig", {f"{P2}_x.sql": header + "CREATE TABLE y (id INTEGER);\n"}
    )
    with pytest.raises(MigrationError, match=rf"{P2}_x\.sql line \d+: .*{message}"):
        m.discover(folder)
