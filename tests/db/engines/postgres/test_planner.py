"""makemigration on PostgreSQL: the same entity changes, plain ALTER TABLE, real rows.

The entity set and its changes are test_makemigration.py's. Each case
writes the next version for both engines (one shared file when their SQL
is the same, both halves otherwise), applies the PostgreSQL half to a
database with rows, runs the start-up schema check against it and plans
again: nothing may be left to do on either engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from pony import orm

from db.engines import engine_for
from db.engines.postgres.scratch import ServerScratch
from db.errors import MigrationError
from db.migrate import discover, migrate
from db.schema.check import schema_problems
from db.schema.makemigration import plan_both, write_both
from db.target import PostgresTarget
from tests.db.schema.test_makemigration import CASES, ROWS, Case, Define, entities
from tests.pg import PostgresServer

# Changes whose SQL is the same on both engines: one NNNN_name.sql.
SHARED = {"index", "optional_column", "default_column", "drop_column"}


@pytest.fixture
def server(postgres: PostgresServer) -> ServerScratch:
    """Scratch databases on the tests' PostgreSQL server."""
    return ServerScratch(PostgresTarget(postgres.url()))


@dataclass
class PgProject:
    """A migrations folder for the base entities and a PostgreSQL database with rows."""

    folder: Path
    target: PostgresTarget
    server: ServerScratch

    def apply(self) -> None:
        """Apply every file to the database with the runner."""
        migrate(self.target, discover(self.folder, "postgres"))

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of one query (autocommit)."""
        con = psycopg2.connect(self.target.url)
        con.autocommit = True
        try:
            cur = con.cursor()
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
        finally:
            con.close()

    def check(self, define: Define) -> list[str]:
        """The start-up schema check for define's entities on this database."""
        orm_db = orm.Database()
        define(orm_db)
        orm_db.bind(provider="postgres", dsn=self.target.url)
        try:
            orm_db.generate_mapping(create_tables=False, check_tables=True)
            return schema_problems(orm_db, engine_for(self.target))
        finally:
            orm_db.disconnect()


@pytest.fixture
def pg_project(tmp_path: Path, pg_url: str, server: ServerScratch) -> PgProject:
    """0001 generated for both engines, applied on PostgreSQL, rows inserted."""
    folder = tmp_path / "mig"
    folder.mkdir()
    _, paths = write_both(folder, "create_library", server, entities())
    assert [p.name for p in paths] == [
        "0001_create_library.sqlite.sql",
        "0001_create_library.postgres.sql",
    ]
    project = PgProject(folder, PostgresTarget(pg_url), server)
    project.apply()
    for statement in ROWS:
        project.query(statement)
    for table in ("authors", "books"):
        project.query(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 10)")
    return project


@pytest.mark.slow  # about 5 s a case on a loaded machine; CI runs them all
@pytest.mark.parametrize("case", CASES, ids=[c.change for c in CASES])
def test_generated_postgres_half_applies_and_keeps_the_data(
    pg_project: PgProject, case: Case
) -> None:
    """Each entity change: the file applies on PostgreSQL, passes the schema check, keeps the rows."""
    define = entities(case.change)
    plans, paths = write_both(pg_project.folder, case.change, pg_project.server, define)
    names = [p.name for p in paths]
    if case.change in SHARED:
        assert names == [f"0002_{case.change}.sql"]
    else:
        assert names == [
            f"0002_{case.change}.sqlite.sql",
            f"0002_{case.change}.postgres.sql",
        ]
    assert bool(plans.postgres.destructive) == case.destructive
    text = paths[-1].read_text()
    assert 'CREATE TABLE "new_' not in text  # no rebuilds on PostgreSQL
    assert ("-- -- migrate: destructive" in text) == case.destructive

    if case.change == "type":
        # 'many' is no integer: PostgreSQL refuses the conversion and rolls back.
        with pytest.raises(MigrationError, match="invalid input syntax for type"):
            pg_project.apply()
        assert pg_project.query("SELECT max(version) FROM schema_migrations") == [(1,)]
        pg_project.query("UPDATE books SET pages = NULL WHERE pages = 'many'")
    pg_project.apply()

    assert pg_project.check(define) == []
    assert pg_project.query("SELECT count(*) FROM authors") == [(case.authors,)]
    if case.books:
        assert pg_project.query("SELECT id, title FROM books ORDER BY id") == [
            (1, "One"),
            (2, "Two"),
            (3, "Three"),
            (4, "Four"),
        ]
    assert not plan_both(pg_project.folder, pg_project.server, define).changes


def test_optional_to_required_fills_nulls_on_postgres(pg_project: PgProject) -> None:
    """Required(str, default="none") on a column with NULLs: UPDATE fills them, no EDIT."""
    pg_project.query("UPDATE authors SET email = NULL WHERE id = 2")
    define = entities("required_constant")
    plans, paths = write_both(
        pg_project.folder, "email_required", pg_project.server, define
    )
    text = paths[-1].read_text()
    assert 'UPDATE "authors" SET "email" = \'none\' WHERE "email" IS NULL' in text
    assert plans.postgres.edits == []
    pg_project.apply()
    assert pg_project.check(define) == []
    assert pg_project.query("SELECT id, email FROM authors ORDER BY id") == [
        (1, "ann@example.org"),
        (2, "none"),
        (3, "cy@example.org"),
    ]


def test_new_required_columns_get_their_defaults_on_postgres(
    pg_project: PgProject,
) -> None:
    """New NOT NULL columns with constant defaults: every row gets them, no default is left behind."""
    define = entities("new_required_constant")
    plans, _ = write_both(pg_project.folder, "country", pg_project.server, define)
    assert plans.postgres.edits == []
    pg_project.apply()
    assert pg_project.check(define) == []
    assert pg_project.query("SELECT DISTINCT country, rank, active FROM authors") == [
        ("NZ", 3, True)
    ]
    assert not plan_both(pg_project.folder, pg_project.server, define).changes


def test_startup_check_names_postgres_differences(pg_project: PgProject) -> None:
    """A hand-made change on PostgreSQL is named table and column, as on SQLite."""
    pg_project.query('ALTER TABLE "authors" ALTER COLUMN "name" DROP NOT NULL')
    pg_project.query('ALTER TABLE "books" DROP CONSTRAINT "fk_books__author_id"')
    pg_project.query('ALTER TABLE "books" ALTER COLUMN "title" TYPE VARCHAR(20)')
    problems = pg_project.check(entities())
    assert "authors.name: nullable, entities expect NOT NULL" in problems
    assert "books.title: type CHARACTER VARYING(20), entities expect TEXT" in problems
    assert (
        "books.author_id: foreign key to authors(id) ON DELETE CASCADE missing"
        in problems
    )
