"""Reading the migrations folder: names, halves, headers, statements per engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from db import migrate as m
from db.engines.base import sql as sqltext
from db.errors import MigrationError
from db.migrations.files import catalog
from tests.helpers import LATEST, SHIPPED, copy_migrations

V2 = LATEST + 1
P2 = f"{V2:04d}"


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


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {f"{P2}_a.sql": "SELECT 1;", f"{P2}_a.postgres.sql": "SELECT 1;"},
            "one NNNN_slug.sql for every engine, or the .sqlite.sql and .postgres.sql halves",
        ),
        (
            {f"{P2}_a.sqlite.sql": "SELECT 1;", f"{P2}_b.postgres.sql": "SELECT 1;"},
            "the two halves of a version have the same name",
        ),
    ],
    ids=["shared-and-half", "halves-named-apart"],
)
def test_ambiguous_halves_are_errors(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    """A shared file beside a half, or halves with different names, are refused."""
    folder = copy_migrations(tmp_path / "mig", files)
    with pytest.raises(MigrationError, match=message):
        m.discover(folder, "sqlite")


def test_a_version_with_one_half_is_named(tmp_path: Path) -> None:
    """Only a .sqlite.sql half: SQLite runs it, PostgreSQL refuses naming the missing half."""
    folder = copy_migrations(tmp_path / "mig", {f"{P2}_t.sqlite.sql": "SELECT 1;\n"})
    assert m.discover(folder, "sqlite")[-1].name == f"{P2}_t.sqlite.sql"
    with pytest.raises(
        MigrationError, match=rf"{P2}_t\.sqlite\.sql has no {P2}_t\.postgres\.sql half"
    ):
        m.discover(folder, "postgres")
    (group,) = [g for g in catalog(folder) if g.version == V2]
    assert f"{P2}_t.postgres.sql" in str(group.missing_half())


def test_each_engine_reads_its_own_half(tmp_path: Path) -> None:
    """The runner for each engine gets that engine's half, with its own checksum."""
    folder = copy_migrations(
        tmp_path / "mig",
        {f"{P2}_t.sqlite.sql": "SELECT 1;\n", f"{P2}_t.postgres.sql": "SELECT 2;\n"},
    )
    sqlite, postgres = (
        m.discover(folder, "sqlite")[-1],
        m.discover(folder, "postgres")[-1],
    )
    assert (sqlite.name, postgres.name) == (
        f"{P2}_t.sqlite.sql",
        f"{P2}_t.postgres.sql",
    )
    assert sqlite.checksum != postgres.checksum
    assert sqlite.stem == postgres.stem == f"{P2}_t"


def test_badly_named_sql_file_is_an_error(tmp_path: Path) -> None:
    """A .sql file that does not follow NNNN_slug.sql is refused, not ignored."""
    folder = copy_migrations(tmp_path / "mig", {"2-add-things.sql": "SELECT 1;\n"})
    with pytest.raises(MigrationError, match=r"2-add-things\.sql"):
        m.discover(folder)


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
    for dialect in ("sqlite", "postgres"):
        with pytest.raises(MigrationError, match=rf"{P2}_x\.sql line \d+: .*{message}"):
            m.discover(folder, dialect)


def test_header_modes_are_read(tmp_path: Path) -> None:
    """Timeouts, destructive and transaction=off come through the header."""
    folder = copy_migrations(
        tmp_path / "mig",
        {
            f"{P2}_ix.postgres.sql": "-- migrate: transaction=off lock_timeout=10s\n"
            "-- migrate: statement_timeout=30min destructive\n"
            'CREATE INDEX CONCURRENTLY IF NOT EXISTS "ix_t" ON "app_metadata" ("value");\n',
            f"{P2}_ix.sqlite.sql": 'CREATE INDEX "ix_t" ON "app_metadata" ("value");\n',
        },
    )
    header = m.discover(folder, "postgres")[-1].header
    assert header.modes() == [
        "transaction=off",
        "lock_timeout=10s",
        "statement_timeout=30min",
        "destructive",
    ]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("BEGIN;\nCREATE TABLE x (id INTEGER);\nCOMMIT;\n", "uses BEGIN"),
        ("START TRANSACTION;\nSELECT 1;\n", "uses START TRANSACTION"),
        ("SET search_path = other;\nSELECT 1;\n", "changes session settings"),
        (
            'CREATE INDEX CONCURRENTLY "ix" ON "app_metadata" ("value");\n',
            "cannot run inside a transaction",
        ),
        ("VACUUM;\n", "cannot run inside a transaction"),
        (
            "-- migrate: transaction=off\nCREATE TABLE a (id INTEGER);\nCREATE TABLE b (id INTEGER);\n",
            "exactly one statement",
        ),
        (
            '-- migrate: transaction=off\nCREATE INDEX CONCURRENTLY "ix" ON "app_metadata" ("value");\n',
            "IF NOT EXISTS",
        ),
    ],
    ids=[
        "begin",
        "start-transaction",
        "set",
        "cic-in-transaction",
        "vacuum",
        "two-statements-off",
        "cic-without-if-not-exists",
    ],
)
def test_postgres_refuses_what_breaks_its_transaction(
    tmp_path: Path, sql: str, message: str
) -> None:
    """Transaction control, session SET, and non-transactional statements outside transaction=off."""
    folder = copy_migrations(
        tmp_path / "mig",
        {f"{P2}_x.postgres.sql": sql, f"{P2}_x.sqlite.sql": "SELECT 1;\n"},
    )
    with pytest.raises(MigrationError, match=message):
        m.discover(folder, "postgres")


def test_postgres_accepts_set_local_and_one_concurrent_index(tmp_path: Path) -> None:
    """SET LOCAL is fine; so is CREATE INDEX CONCURRENTLY IF NOT EXISTS alone under transaction=off."""
    folder = copy_migrations(
        tmp_path / "mig",
        {
            f"{P2}_x.postgres.sql": "-- migrate: transaction=off\n"
            'CREATE INDEX CONCURRENTLY IF NOT EXISTS "ix" ON "app_metadata" ("value");\n',
            f"{P2}_x.sqlite.sql": 'CREATE INDEX "ix" ON "app_metadata" ("value");\n',
            f"{V2 + 1:04d}_y.sql": "SET LOCAL work_mem = '64MB';\nSELECT 1;\n",
        },
    )
    assert len(m.discover(folder, "postgres")) == len(SHIPPED) + 2


def test_transaction_off_is_refused_on_sqlite(tmp_path: Path) -> None:
    """SQLite runs every file in one transaction: transaction=off is an error there."""
    folder = copy_migrations(
        tmp_path / "mig", {f"{P2}_x.sql": "-- migrate: transaction=off\nSELECT 1;\n"}
    )
    with pytest.raises(MigrationError, match="transaction=off is for PostgreSQL"):
        m.discover(folder, "sqlite")


def test_postgres_statements_split_outside_quotes() -> None:
    """Semicolons in strings, E-strings, dollar quotes, nested comments and BEGIN ATOMIC stay put."""
    script = (
        "INSERT INTO t VALUES ('a;b', E'it\\'s;');\n"
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n"
        "/* a /* nested; */ comment */ SELECT 2;\n"
        "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; "
        "SELECT CASE WHEN true THEN 2 END; END;\n"
        "-- only a comment;\n"
    )
    statements = sqltext.split(script, "postgres")
    assert len(statements) == 4
    assert statements[0] == "INSERT INTO t VALUES ('a;b', E'it\\'s;')"
    assert statements[1].endswith("$body$ LANGUAGE sql")
    assert statements[3].endswith("END")
