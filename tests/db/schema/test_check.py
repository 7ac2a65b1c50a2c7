"""The startup schema check: migrated tables must match the entities."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.database import open_database
from db.engines import scratch_source
from db.errors import SchemaMismatchError
from db.migrate import discover
from db.schema.check import migrations_problems
from tests.helpers import copy_migrations, needs_postgres_binaries, run_cli, service_env


def folder_with_0001(tmp_path: Path, ddl: str) -> Path:
    """The shipped migrations, but 0001 creates app_metadata as given."""
    folder = copy_migrations(tmp_path / "mig")
    (folder / "0001_create_app_metadata.sqlite.sql").write_text(ddl)
    return folder


@pytest.mark.parametrize(
    ("ddl", "expected"),
    [
        (
            "CREATE TABLE app_metadata (key TEXT NOT NULL PRIMARY KEY, value TEXT, "
            "updated_at DATETIME NOT NULL);",
            "app_metadata.value: nullable, entities expect NOT NULL",
        ),
        (
            "CREATE TABLE app_metadata (key TEXT NOT NULL PRIMARY KEY, value BLOB NOT NULL, "
            "updated_at DATETIME NOT NULL);",
            "app_metadata.value: type BLOB, entities expect TEXT",
        ),
        (
            "CREATE TABLE app_metadata (key TEXT NOT NULL, value TEXT NOT NULL, "
            "updated_at DATETIME NOT NULL);",
            "app_metadata.key: primary key position 0, entities expect 1",
        ),
        (
            "CREATE TABLE app_metadata (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL UNIQUE, "
            "updated_at DATETIME NOT NULL);",
            "app_metadata(value): unique constraint the entities do not declare",
        ),
        (
            "CREATE TABLE app_metadata (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL, "
            "updated_at DATETIME NOT NULL, tenant INTEGER NOT NULL);",
            "app_metadata.tenant: NOT NULL column without a default",
        ),
        (
            "CREATE TABLE other (id INTEGER PRIMARY KEY); "
            "CREATE TABLE app_metadata (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL, "
            "updated_at DATETIME NOT NULL, owner INTEGER REFERENCES other (id));",
            "app_metadata.owner: foreign key to other(id) ON DELETE NO ACTION that the "
            "entities do not declare",
        ),
        (
            "CREATE TABLE app_metadata (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL);",
            "updated_at",
        ),
    ],
    ids=[
        "nullable",
        "type",
        "no-primary-key",
        "extra-unique",
        "extra-not-null",
        "extra-foreign-key",
        "missing-column",
    ],
)
def test_mismatch_stops_startup_naming_table_and_column(
    tmp_path: Path, ddl: str, expected: str
) -> None:
    """A schema that differs from the entities is refused with table and column named."""
    folder = folder_with_0001(tmp_path, ddl)
    with pytest.raises(SchemaMismatchError) as caught:
        open_database(tmp_path / "db.sqlite3", migrations_source=folder)
    assert expected in str(caught.value)


def _open_files_under(folder: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    names = []
    for fd in fds.iterdir():
        try:
            target = fd.readlink()
        except OSError:  # closed while listing
            continue
        if target.is_relative_to(folder):
            names.append(target.name)
    return names


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_refused_startup_leaves_no_connection_open(tmp_path: Path) -> None:
    """A schema mismatch closes the connection bind() opened, not the garbage collector."""
    folder = folder_with_0001(
        tmp_path,
        "CREATE TABLE app_metadata (key TEXT NOT NULL PRIMARY KEY, value TEXT, "
        "updated_at DATETIME NOT NULL);",
    )
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(SchemaMismatchError) as caught:
        open_database(data / "db.sqlite3", migrations_source=folder)
    # The traceback keeps every frame of open_database alive, so an unclosed
    # connection would still hold the file open here.
    assert caught.value is not None
    assert _open_files_under(data) == []


def test_harmless_extras_are_accepted(tmp_path: Path) -> None:
    """Extra nullable columns, extra indexes and extra tables do not stop start-up."""
    folder = folder_with_0001(
        tmp_path,
        "CREATE TABLE app_metadata (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL, "
        "updated_at DATETIME NOT NULL, note TEXT);\n"
        "CREATE INDEX ix_app_metadata_updated ON app_metadata (updated_at);\n"
        "CREATE TABLE audit (id INTEGER PRIMARY KEY);\n",
    )
    open_database(tmp_path / "db.sqlite3", migrations_source=folder).close()


def test_project_migrations_match_entities(tmp_path: Path) -> None:
    """The shipped migrations produce exactly the schema the entities expect."""
    with scratch_source("sqlite") as source:
        assert migrations_problems(discover(), source) == []


def test_serve_refuses_mismatch_with_one_line(tmp_path: Path) -> None:
    """serve exits 1 with one line naming the table and column."""
    folder = folder_with_0001(
        tmp_path,
        "CREATE TABLE app_metadata (key TEXT NOT NULL PRIMARY KEY, value TEXT, "
        "updated_at DATETIME NOT NULL);",
    )
    result = run_cli(
        "serve", env=service_env(tmp_path / "db.sqlite3", migrations_path=folder)
    )
    assert result.returncode == 1
    fatal = [line for line in result.stderr.splitlines() if '"CRITICAL"' in line]
    assert len(fatal) == 1
    assert "app_metadata.value" in fatal[0]


@pytest.mark.slow  # check/makemigration start a throwaway PostgreSQL server
@needs_postgres_binaries  # check covers PostgreSQL through a throwaway server
def test_check_command_reports_entity_drift(tmp_path: Path) -> None:
    """`check` fails when the migrations no longer match the entities."""
    shipped = copy_migrations(tmp_path / "shipped")
    good = run_cli(
        "check", env=service_env(tmp_path / "db.sqlite3", migrations_path=shipped)
    )
    assert good.returncode == 0, good.stdout + good.stderr
    folder = folder_with_0001(
        tmp_path,
        "CREATE TABLE app_metadata (key TEXT NOT NULL PRIMARY KEY, value TEXT, "
        "updated_at DATETIME NOT NULL);",
    )
    bad = run_cli(
        "check", env=service_env(tmp_path / "db2.sqlite3", migrations_path=folder)
    )
    assert bad.returncode == 1
    assert "app_metadata.value" in bad.stdout
