"""The migration runner on both engines: one suite, the `engine` fixture.

Every test here runs once against a real SQLite file and once against a
real PostgreSQL database (tests/pg.py's server). Engine-only rules are in
test_migrations_sqlite.py and test_migrations_postgres.py.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from db import migrate as m
from db.errors import MigrationError
from db.target import PostgresTarget
from tests.helpers import LATEST, SHIPPED, needs_postgres_binaries, run_cli

if TYPE_CHECKING:  # the module is a plugin: importing it first breaks its rewrite
    from tests.migration_engines import Engine

pytest_plugins = ("tests.migration_engines",)

# Versions of the files the tests add after the shipped ones.
V2, V3 = LATEST + 1, LATEST + 2
P2, P3 = f"{V2:04d}", f"{V3:04d}"


def test_fresh_database_gets_every_migration_once_with_history(engine: Engine) -> None:
    """A fresh database gets every file once, a history row each with checksum, timing and dialect."""
    folder = engine.folder()
    state = engine.migrate(folder)
    assert state.pending == []
    assert state.version == LATEST
    row, *_ = engine.query(
        "SELECT version, name, checksum, applied_at, execution_ms, dialect, how "
        "FROM schema_migrations ORDER BY version"
    )
    assert row[0] == 1
    assert row[1] == f"0001_create_app_metadata.{engine.dialect}.sql"
    assert str(row[2]).startswith("sha256-lf:")
    # ISO text with a Z on SQLite; TIMESTAMPTZ on PostgreSQL.
    assert str(row[3]).endswith("Z") if engine.dialect == "sqlite" else row[3].tzinfo
    assert float(row[4]) >= 0
    assert row[5:] == (engine.dialect, "applied")
    assert engine.migrate(folder).applied == SHIPPED
    assert engine.history() == SHIPPED


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


def test_failed_file_leaves_no_trace_and_is_retried(engine: Engine) -> None:
    """A failing file rolls back entirely, names file and statement, and applies once fixed."""
    folder = engine.folder(
        {
            f"{P2}_half": "CREATE TABLE first_half (id INTEGER PRIMARY KEY);\n"
            "INSERT INTO missing_table VALUES (1);\n"
        }
    )
    with pytest.raises(MigrationError) as caught:
        engine.migrate(folder)
    message = str(caught.value)
    assert f"{P2}_half.sql failed at statement 2" in message
    assert "missing_table" in message
    assert "first_half" not in engine.tables()
    assert engine.history() == SHIPPED
    assert engine.log() == [(V2, "failed")]

    (folder / f"{P2}_half.sql").write_text(
        "CREATE TABLE first_half (id INTEGER PRIMARY KEY);\n"
    )
    engine.migrate(folder)
    assert engine.history() == [*SHIPPED, V2]
    assert "first_half" in engine.tables()


def test_edited_file_is_refused_until_accepted(engine: Engine) -> None:
    """An applied file whose content changed stops the runner; accept-checksum clears it."""
    folder = engine.folder({f"{P2}_t": "CREATE TABLE t (id INTEGER);\n"})
    engine.migrate(folder)
    (folder / f"{P2}_t.sql").write_text("CREATE TABLE t (id INTEGER, extra TEXT);\n")
    with pytest.raises(
        MigrationError,
        match=rf"{P2}_t\.sql was edited after it was applied.*accept-checksum {V2}",
    ):
        engine.migrate(folder)

    env = engine.env(migrations_path=folder)
    assert run_cli("status", env=env).returncode == 4
    accepted = run_cli("accept-checksum", str(V2), env=env)
    assert accepted.returncode == 0, accepted.stderr
    assert run_cli("status", env=env).returncode == 0
    assert engine.log() == [(V2, "accept_checksum")]


def test_line_ending_change_is_not_an_edit(engine: Engine) -> None:
    """Converting an applied file to CRLF with a BOM does not count as an edit."""
    folder = engine.folder()
    engine.migrate(folder)
    file = folder / f"0001_create_app_metadata.{engine.dialect}.sql"
    file.write_bytes(b"\xef\xbb\xbf" + file.read_bytes().replace(b"\n", b"\r\n"))
    assert engine.migrate(folder).edited == []


def test_a_file_split_into_halves_keeps_its_version(engine: Engine) -> None:
    """Applied as NNNN_x.sql, later split into halves with the same text: the same file, nothing to do."""
    sql = "CREATE TABLE t (id INTEGER);\n"
    folder = engine.folder({f"{P2}_t": sql})
    engine.migrate(folder)
    (folder / f"{P2}_t.sql").unlink()
    other = "CREATE TABLE t (id BIGINT);\n"
    halves = (
        {"sqlite": sql, "postgres": other}
        if engine.dialect == "sqlite"
        else {
            "sqlite": other,
            "postgres": sql,
        }
    )
    for dialect, text in halves.items():
        (folder / f"{P2}_t.{dialect}.sql").write_text(text)
    state = engine.migrate(folder)
    assert (state.pending, state.edited) == ([], [])


def test_pending_file_below_newest_is_applied_with_warning(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A file numbered below the newest applied one is applied, never skipped."""
    folder = engine.folder({f"{P3}_c": "CREATE TABLE c (id INTEGER);\n"})
    engine.migrate(folder)
    (folder / f"{P2}_b.sql").write_text("CREATE TABLE b (id INTEGER);\n")
    with caplog.at_level(logging.WARNING, logger="db.migrate"):
        state = engine.migrate(folder)
    assert state.applied == [*SHIPPED, V2, V3]
    assert "b" in engine.tables()
    assert any("out of order" in r.getMessage() for r in caplog.records)
    assert engine.log() == [(V2, "out_of_order")]


def test_database_ahead_of_code_warns_and_runs(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Versions in the database with no file (older code, newer database) warn only."""
    newer = engine.folder(
        {f"{P2}_extra": "CREATE TABLE extra (id INTEGER);\n"}, "newer"
    )
    engine.migrate(newer)
    with caplog.at_level(logging.WARNING, logger="db.migrate"):
        state = engine.migrate(engine.folder(name="older"))
    assert state.unknown == [V2]
    assert any("does not ship" in r.getMessage() for r in caplog.records)


def test_verify_mode_refuses_pending_and_writes_nothing(engine: Engine) -> None:
    """apply=False (SERVICE_MIGRATE=verify) refuses while anything is pending."""
    with pytest.raises(MigrationError, match="pending migrations"):
        engine.migrate(engine.folder(), apply=False)
    assert "app_metadata" not in engine.tables()


def test_untracked_database_with_tables_is_refused(engine: Engine) -> None:
    """A database made by something else is not migrated by guesswork."""
    engine.execute("CREATE TABLE app_metadata (key TEXT)")
    with pytest.raises(MigrationError, match=r"no migration history.*baseline"):
        engine.migrate(engine.folder())
    assert "schema_migrations" not in engine.tables()


def test_migrate_and_status_commands(engine: Engine) -> None:
    """status exits 3 while pending, migrate applies, status then exits 0; the password is never printed."""
    env = engine.env(migrations_path=engine.folder())
    pending = run_cli("status", env=env)
    assert pending.returncode == 3, pending.stdout + pending.stderr
    migrated = run_cli("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert f"schema version {LATEST}" in migrated.stdout
    clean = run_cli("status", env=env)
    assert clean.returncode == 0
    assert "applied" in clean.stdout
    if engine.dialect == "postgres":
        password = engine.target.url.split(":")[2].split("@")[0]  # type: ignore[union-attr]
        for result in (pending, migrated, clean):
            assert password not in result.stdout + result.stderr


def test_plan_on_both_engines(engine: Engine) -> None:
    """migrate --plan lists the engine's runner steps and exits 3; after migrate, 0."""
    env = engine.env(migrations_path=engine.folder())
    plan = run_cli("migrate", "--plan", env=env)
    assert plan.returncode == 3, plan.stdout + plan.stderr
    assert f"{len(SHIPPED)} pending migration(s)" in plan.stdout
    expected = (
        "SET LOCAL lock_timeout = '5s'"
        if engine.dialect == "postgres"
        else "BEGIN IMMEDIATE"
    )
    assert expected in plan.stdout
    assert "schema_migrations" not in engine.tables()
    assert run_cli("migrate", env=env).returncode == 0
    assert run_cli("migrate", "--plan", env=env).returncode == 0


def test_baseline_on_both_engines(engine: Engine) -> None:
    """A database built without the runner is adopted by baseline, then migrated on."""
    folder = engine.folder(
        {f"{P2}_tags": "CREATE TABLE tags (id INTEGER PRIMARY KEY);\n"}
    )
    for migration in engine.discover(folder)[: len(SHIPPED)]:
        for statement in migration.statements:
            engine.execute(statement)
    env = engine.env(migrations_path=folder)
    assert run_cli("migrate", env=env).returncode == 1
    adopted = run_cli("baseline", str(LATEST), env=env)
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert engine.query("SELECT DISTINCT how FROM schema_migrations") == [
        ("baselined",)
    ]
    assert run_cli("migrate", env=env).returncode == 0
    assert engine.history() == [*SHIPPED, V2]


def test_baseline_refuses_a_different_schema_on_both_engines(engine: Engine) -> None:
    """A database one column off what the files create: baseline names the column,
    records nothing, and the rows stay; without the extra column it adopts."""
    for migration in engine.discover(engine.folder())[: len(SHIPPED)]:
        for statement in migration.statements:
            engine.execute(statement)
    engine.execute(
        "INSERT INTO app_metadata (key, value, updated_at) "
        "VALUES ('kept', 'v', '2026-01-01 00:00:00')"
    )
    engine.execute("ALTER TABLE app_metadata ADD COLUMN nickname TEXT")
    env = engine.env(migrations_path=engine.folder())
    refused = run_cli("baseline", str(LATEST), env=env)
    assert refused.returncode == 1
    assert "app_metadata.nickname" in refused.stdout + refused.stderr
    assert "schema_migrations" not in engine.tables() or engine.history() == []
    engine.execute("ALTER TABLE app_metadata DROP COLUMN nickname")
    adopted = run_cli("baseline", str(LATEST), env=env)
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert engine.history() == SHIPPED
    assert engine.query("SELECT key, value FROM app_metadata") == [("kept", "v")]


def test_branch_conflict_on_both_engines(engine: Engine) -> None:
    """Another branch's file applied as version N gets the conflict message, not 'edited'."""
    engine.migrate(
        engine.folder({f"{P2}_add_tags": "CREATE TABLE tags (id INTEGER);\n"}, "theirs")
    )
    ours = engine.folder(
        {f"{P2}_add_likes": "CREATE TABLE likes (id INTEGER);\n"}, "ours"
    )
    with pytest.raises(MigrationError, match=f"two branches both added version {V2}"):
        engine.migrate(ours)


def test_comment_only_file_is_refused_in_one_line(engine: Engine) -> None:
    """A pending file with comments only stops the run before anything is applied."""
    folder = engine.folder(
        {
            f"{P2}_later": "-- to be written\n",
            f"{P3}_tags": "CREATE TABLE tags (id INTEGER);\n",
        }
    )
    with pytest.raises(MigrationError, match=rf"{P2}_later\.sql has no SQL yet"):
        engine.migrate(folder)
    assert "schema_migrations" not in engine.tables() or engine.history() == []


def test_schema_check_on_both_engines(engine: Engine) -> None:
    """schema_problems: the shipped files match the entities; a hand-made change is named."""
    from pony import orm

    from db.domain.entities import define_entities
    from db.engines import engine_for
    from db.schema.check import schema_problems

    engine.migrate(engine.folder())

    def problems() -> list[str]:
        orm_db = orm.Database()
        define_entities(orm_db)
        if isinstance(engine.target, PostgresTarget):
            orm_db.bind(provider="postgres", dsn=engine.target.url)
        else:
            orm_db.bind(provider="sqlite", filename=str(engine.target.path))
        try:
            orm_db.generate_mapping(create_tables=False, check_tables=True)
            return schema_problems(orm_db, engine_for(engine.target))
        finally:
            orm_db.disconnect()

    assert problems() == []
    engine.execute('CREATE UNIQUE INDEX "ux_display" ON "users" ("display_name")')
    assert problems() == [
        "users(display_name): unique constraint the entities do not declare"
    ]


@needs_postgres_binaries  # check covers PostgreSQL through a throwaway server
def test_check_lints_pending_files_on_the_live_database(engine: Engine) -> None:
    """check refuses a pending DROP COLUMN on the database the settings name, on either engine."""
    folder = engine.folder(
        {f"{P2}_note": 'ALTER TABLE "app_metadata" ADD COLUMN "note" TEXT;\n'}
    )
    engine.migrate(folder)
    engine.execute(
        "INSERT INTO app_metadata VALUES ('k', 'v', '2026-01-01 00:00:00', 'n')"
    )
    (folder / f"{P3}_drop_note.sql").write_text(
        'ALTER TABLE "app_metadata" DROP COLUMN "note";\n'
    )
    result = run_cli("check", env=engine.env(migrations_path=folder))
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        f"{engine.dialect}: destructive: {P3}_drop_note.sql: drops column app_metadata.note"
        in result.stdout
    )
    assert "pending on " in result.stdout
