"""makemigration: the next migration generated from the entities.

Each case starts from a scratch copy of a small entity set (authors and
books), migrated and filled with rows, changes the entities, generates the
file, applies it with the runner and checks the schema, the data and that a
second run finds nothing left to do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pony import orm

from db.engines import engine_for
from db.errors import MigrationError
from db.migrate import discover, migrate
from db.migrations import lint
from db.migrations.scratch import scratch_like
from db.schema.check import check_mapping
from db.schema.makemigration import plan_migration, render, write_migration
from db.target import SqliteTarget
from tests.helpers import (
    LATEST,
    MIGRATIONS,
    SHIPPED,
    copy_migrations,
    needs_postgres_binaries,
    run_cli,
    service_env,
)

Define = Callable[[orm.Database], Any]


def entities(change: str = "") -> Define:
    """The scratch entity set, with one named change applied."""

    def define(db: orm.Database) -> dict[str, Any]:
        class Author(db.Entity):
            _table_ = "authors"
            id = orm.PrimaryKey(int, auto=True, column="id")
            name = orm.Required(str, column="name", unique=change == "unique")
            if change == "required":
                email = orm.Required(str, column="email")
            elif change == "required_with_default":
                email = orm.Required(str, column="email", sql_default="''")
            elif change == "required_constant":
                email = orm.Required(str, column="email", default="none")
            elif change == "required_callable":
                email = orm.Required(str, column="email", default=lambda: "x")
            elif change == "rename_column":
                contact = orm.Optional(str, nullable=True, column="contact")
            else:
                email = orm.Optional(str, nullable=True, column="email")
            if change == "optional_column":
                bio = orm.Optional(str, nullable=True, column="bio")
            if change == "required_no_default":
                country = orm.Required(str, column="country")
            if change == "new_required_constant":
                country = orm.Required(str, column="country", default="NZ")
                rank = orm.Required(int, column="rank", default=3)
                active = orm.Required(bool, column="active", default=True)
            if change not in ("drop_entity", "drop_relationship"):
                books = orm.Set("Book", reverse="author")
            if change == "one_to_many":
                edited = orm.Set("Book", reverse="editor")
            if change == "many_to_many":
                favourites = orm.Set("Book", reverse="fans", column="book_id")

        if change == "drop_entity":
            return {"Author": Author}

        class Book(db.Entity):
            _table_ = "books"
            id = orm.PrimaryKey(int, auto=True, column="id")
            title = orm.Required(str, column="title", index=change == "index")
            if change != "drop_relationship":
                author = orm.Required(Author, column="author_id", reverse="books")
            if change == "type":
                pages = orm.Optional(int, nullable=True, column="pages")
            elif change != "drop_column":
                pages = orm.Optional(str, nullable=True, column="pages")
            if change == "default_column":
                status = orm.Required(
                    str, column="status", default="draft", sql_default="'draft'"
                )
            if change == "one_to_many":
                editor = orm.Optional(Author, column="editor_id", reverse="edited")
            if change == "many_to_many":
                fans = orm.Set(
                    Author, reverse="favourites", table="book_fans", column="author_id"
                )
            if change == "add_entity":
                reviews = orm.Set("Review")

        if change == "add_entity":

            class Review(db.Entity):
                _table_ = "reviews"
                id = orm.PrimaryKey(int, auto=True, column="id")
                book = orm.Required(Book, column="book_id")
                stars = orm.Required(int, column="stars")

        return {"Author": Author, "Book": Book}

    return define


ROWS = (
    "INSERT INTO authors (id, name, email) VALUES (1, 'Ann', 'ann@example.org'), "
    "(2, 'Bob', 'bob@example.org'), (3, 'Cy', 'cy@example.org')",
    "INSERT INTO books (id, title, author_id, pages) VALUES (1, 'One', 1, '120'), "
    "(2, 'Two', 1, NULL), (3, 'Three', 2, '300'), (4, 'Four', 3, 'many')",
)


@dataclass
class Project:
    """A migrations folder for the base entities and a database with rows."""

    folder: Path
    db_path: Path
    extra_files: list[Path] = field(default_factory=list)

    def apply(self) -> None:
        """Apply every file in the folder to the database with the runner."""
        migrate(self.db_path, discover(self.folder))

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of one query on a fresh connection."""
        con = sqlite3.connect(self.db_path)
        try:
            return [tuple(row) for row in con.execute(sql)]
        finally:
            con.close()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """0001 generated from the base entities, applied, rows inserted."""
    folder = tmp_path / "mig"
    folder.mkdir()
    _, first = write_migration(folder, "create_library", entities())
    assert first is not None
    assert first.name == "0001_create_library.sqlite.sql"
    db_path = tmp_path / "db.sqlite3"
    project = Project(folder, db_path)
    project.apply()
    con = sqlite3.connect(db_path)
    with con:
        for statement in ROWS:
            con.execute(statement)
    con.close()
    return project


def assert_startup_check_accepts(path: Path, define: Define) -> None:
    """Pony maps the entities and the startup schema check passes."""
    orm_db = orm.Database()
    define(orm_db)
    orm_db.bind(provider="sqlite", filename=str(path.resolve()))
    try:
        check_mapping(orm_db, engine_for(SqliteTarget(path)))
    finally:
        orm_db.disconnect()


@dataclass(frozen=True)
class Case:
    """One entity change and what its migration must look like."""

    change: str
    expect_sql: tuple[str, ...]
    authors: int = 3
    books: int = 4
    destructive: bool = False
    check: Callable[[Project], None] | None = None


def _pages_became_integers(project: Project) -> None:
    assert project.query("SELECT id, pages, typeof(pages) FROM books ORDER BY id") == [
        (1, 120, "integer"),
        (2, None, "null"),
        (3, 300, "integer"),
        (4, "many", "text"),  # affinity converts only losslessly
    ]


def _status_defaulted(project: Project) -> None:
    assert project.query("SELECT DISTINCT status FROM books") == [("draft",)]


def _name_unique(project: Project) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        project.query("INSERT INTO authors (name) VALUES ('Ann')")


def _m2m_usable(project: Project) -> None:
    con = sqlite3.connect(project.db_path)
    with con:
        con.execute("INSERT INTO book_fans (book_id, author_id) VALUES (1, 2)")
    con.close()
    assert project.query("SELECT book_id, author_id FROM book_fans") == [(1, 2)]


def _editor_nullable(project: Project) -> None:
    assert project.query("SELECT count(*) FROM books WHERE editor_id IS NULL") == [(4,)]


def _emails_kept(project: Project) -> None:
    assert project.query("SELECT email FROM authors ORDER BY id") == [
        ("ann@example.org",),
        ("bob@example.org",),
        ("cy@example.org",),
    ]


CASES = [
    Case(
        "add_entity", ('CREATE TABLE "reviews"', 'CREATE INDEX "idx_reviews__book_id"')
    ),
    Case("optional_column", ('ALTER TABLE "authors" ADD COLUMN "bio" TEXT',)),
    Case(
        "default_column",
        ('ALTER TABLE "books" ADD COLUMN "status" TEXT DEFAULT \'draft\' NOT NULL',),
        check=_status_defaulted,
    ),
    Case(
        "index",
        ('CREATE INDEX "idx_books__title"',),
    ),
    Case(
        "unique",
        ('CREATE TABLE "new_authors"', "add UNIQUE (name)"),
        check=_name_unique,
    ),
    Case(
        "one_to_many",
        (
            'ALTER TABLE "books" ADD COLUMN "editor_id" INTEGER REFERENCES "authors" '
            '("id") ON DELETE SET NULL',
            'CREATE INDEX "idx_books__editor_id"',
        ),
        check=_editor_nullable,
    ),
    Case(
        "many_to_many",
        ('CREATE TABLE "book_fans"', 'CREATE INDEX "idx_book_fans"'),
        check=_m2m_usable,
    ),
    Case(
        "type",
        ('CREATE TABLE "new_books"', 'column "pages": type TEXT -> INTEGER'),
        destructive=True,
        check=_pages_became_integers,
    ),
    Case(
        "required",
        ('CREATE TABLE "new_authors"', 'column "email": NOT NULL (was nullable)'),
        check=_emails_kept,
    ),
    Case(
        "drop_column",
        ('ALTER TABLE "books" DROP COLUMN "pages"',),
        destructive=True,
    ),
    Case(
        "drop_relationship",
        ('CREATE TABLE "new_books"', 'drop column "author_id" (has a foreign key)'),
        destructive=True,
    ),
    Case("drop_entity", ('DROP TABLE "books"',), books=0, destructive=True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.change for c in CASES])
def test_generated_migration_applies_and_keeps_the_data(
    project: Project, case: Case
) -> None:
    """The file for each entity change applies, passes the check and keeps the rows."""
    define = entities(case.change)
    plan, path = write_migration(project.folder, case.change, define)
    assert path is not None
    assert path.name == f"0002_{case.change}.sqlite.sql"
    text = path.read_text()
    for expected in case.expect_sql:
        assert expected in text
    assert ("DESTRUCTIVE" in text) == case.destructive
    assert bool(plan.destructive) == case.destructive
    assert text.startswith("-- migrate: foreign_keys=off") == plan.foreign_keys_off, (
        text
    )

    project.apply()

    assert_startup_check_accepts(project.db_path, define)
    assert project.query("SELECT count(*) FROM authors") == [(case.authors,)]
    if case.books:
        assert project.query("SELECT id, title FROM books ORDER BY id") == [
            (1, "One"),
            (2, "Two"),
            (3, "Three"),
            (4, "Four"),
        ]
    else:
        assert ("books",) not in project.query(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
    assert project.query("PRAGMA foreign_key_check") == []
    if case.check:
        case.check(project)
    assert plan_migration(project.folder, define).changes == ()


@pytest.mark.parametrize("change", ["drop_column", "type", "drop_entity"])
def test_destructive_output_needs_a_human_to_opt_in(
    project: Project, change: str
) -> None:
    """A destructive file carries the destructive header commented out; the lint refuses it until a human enables it."""
    _, path = write_migration(project.folder, change, entities(change))
    assert path is not None
    text = path.read_text()
    assert "\n-- -- migrate: destructive\n" in text
    version = int(path.name[:4])

    def lint_findings() -> list[lint.Finding]:
        with scratch_like(SqliteTarget(project.db_path)) as scratch:
            return lint.lint(discover(project.folder), {version}, scratch)

    assert lint_findings()
    assert not any(f.acknowledged for f in lint_findings())
    path.write_text(
        text.replace("\n-- -- migrate: destructive\n", "\n-- migrate: destructive\n")
    )
    assert all(f.acknowledged for f in lint_findings())
    project.apply()


def test_safe_output_has_no_destructive_header(project: Project) -> None:
    """A file that only adds things says nothing about destructive, and the lint passes it."""
    _, path = write_migration(project.folder, "bio", entities("optional_column"))
    assert path is not None
    assert "destructive" not in path.read_text()
    with scratch_like(SqliteTarget(project.db_path)) as scratch:
        assert lint.lint(discover(project.folder), {2}, scratch) == []


def test_required_column_without_default_waits_for_a_human(project: Project) -> None:
    """A new NOT NULL column without a default fails on rows until its value is filled in."""
    define = entities("required_no_default")
    plan, path = write_migration(project.folder, "add_country", define)
    assert path is not None
    text = path.read_text()
    assert "-- EDIT: 1 place(s) below need a human." in text
    assert (
        'SELECT "id", "name", "email", NULL /* EDIT: value for the existing rows */'
        in text
    )
    assert plan.edits

    with pytest.raises(MigrationError, match="NOT NULL constraint failed"):
        project.apply()
    assert project.query("SELECT count(*) FROM authors") == [(3,)]
    assert project.query("SELECT max(version) FROM schema_migrations") == [(1,)]

    path.write_text(
        text.replace("NULL /* EDIT: value for the existing rows */", "'NZ'")
    )
    project.apply()
    assert_startup_check_accepts(project.db_path, define)
    assert project.query("SELECT DISTINCT country FROM authors") == [("NZ",)]
    assert plan_migration(project.folder, define).changes == ()


def test_required_with_sql_default_fills_nulls_from_the_default(
    project: Project,
) -> None:
    """Making a column NOT NULL copies NULLs as the entity's sql_default."""
    con = sqlite3.connect(project.db_path)
    with con:
        con.execute("UPDATE authors SET email = NULL WHERE id = 2")
    con.close()
    define = entities("required_with_default")
    _, path = write_migration(project.folder, "email_required", define)
    assert path is not None
    assert "COALESCE(\"email\", '')" in path.read_text()
    project.apply()
    assert_startup_check_accepts(project.db_path, define)
    assert project.query("SELECT id, email FROM authors ORDER BY id") == [
        (1, "ann@example.org"),
        (2, ""),
        (3, "cy@example.org"),
    ]


def _null_email(project: Project) -> None:
    con = sqlite3.connect(project.db_path)
    with con:
        con.execute("UPDATE authors SET email = NULL WHERE id = 2")
    con.close()


def test_optional_to_required_with_a_constant_default_applies_unedited(
    project: Project,
) -> None:
    """Optional -> Required(default="none") fills the NULL rows with the default, no EDIT."""
    _null_email(project)
    define = entities("required_constant")
    plan, path = write_migration(project.folder, "email_required", define)
    assert path is not None
    text = path.read_text()
    assert "COALESCE(\"email\", 'none')" in text
    assert "-- EDIT:" not in text
    assert plan.edits == []
    project.apply()
    assert_startup_check_accepts(project.db_path, define)
    assert project.query("SELECT id, email FROM authors ORDER BY id") == [
        (1, "ann@example.org"),
        (2, "none"),
        (3, "cy@example.org"),
    ]
    assert project.query("SELECT count(*) FROM books") == [(4,)]
    assert plan_migration(project.folder, define).changes == ()


def test_new_required_columns_with_constant_defaults_fill_existing_rows(
    project: Project,
) -> None:
    """New NOT NULL str/int/bool columns with constant defaults get them on every row."""
    define = entities("new_required_constant")
    plan, path = write_migration(project.folder, "country", define)
    assert path is not None
    assert plan.edits == []
    assert "'NZ', 3, 1" in path.read_text()
    project.apply()
    assert_startup_check_accepts(project.db_path, define)
    assert project.query("SELECT DISTINCT country, rank, active FROM authors") == [
        ("NZ", 3, 1)
    ]
    assert plan_migration(project.folder, define).changes == ()


def test_callable_default_needs_a_human(project: Project) -> None:
    """A default only Python can compute cannot fill SQL rows: the file says EDIT."""
    _null_email(project)
    plan, path = write_migration(
        project.folder, "email_required", entities("required_callable")
    )
    assert path is not None
    assert "no constant default" in path.read_text()
    assert len(plan.edits) == 1
    with pytest.raises(MigrationError, match="NOT NULL constraint failed"):
        project.apply()
    assert project.query("SELECT count(*) FROM authors") == [(3,)]


def test_rebuild_keeps_autoincrement_ids_unused(project: Project) -> None:
    """After a rebuild a new row never reuses the id of a deleted one."""
    con = sqlite3.connect(project.db_path)
    with con:
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("DELETE FROM authors WHERE id = 3")
    con.close()
    define = entities("unique")
    write_migration(project.folder, "unique_names", define)
    project.apply()
    con = sqlite3.connect(project.db_path)
    with con:
        new_id = con.execute("INSERT INTO authors (name) VALUES ('Dee')").lastrowid
    con.close()
    assert new_id == 4


def test_rename_is_flagged_and_the_edited_file_keeps_the_data(
    project: Project,
) -> None:
    """Drop + add in one table names the rename; the RENAME COLUMN a human writes applies."""
    define = entities("rename_column")
    plan, path = write_migration(project.folder, "contact", define)
    assert path is not None
    text = path.read_text()
    assert 'ALTER TABLE "authors" DROP COLUMN "email"' in text
    assert 'ALTER TABLE "authors" ADD COLUMN "contact" TEXT' in text
    assert "-- DESTRUCTIVE: drops column" in text
    assert any("RENAME COLUMN" in line for line in plan.edits)

    path.write_text('ALTER TABLE "authors" RENAME COLUMN "email" TO "contact";\n')
    project.apply()
    assert_startup_check_accepts(project.db_path, define)
    assert project.query("SELECT contact FROM authors WHERE id = 1") == [
        ("ann@example.org",)
    ]
    assert plan_migration(project.folder, define).changes == ()


def test_views_and_triggers_survive_a_rebuild(project: Project) -> None:
    """A rebuild drops and recreates the views and triggers on its table, and only those."""
    hand_written = project.folder / "0002_views.sql"
    hand_written.write_text(
        "CREATE VIEW author_names AS SELECT id, name FROM authors;\n"
        "CREATE VIEW named_authors AS SELECT name FROM author_names;\n"
        "CREATE VIEW book_titles AS SELECT id, title FROM books;\n"
        "CREATE TRIGGER books_touch_author AFTER INSERT ON books BEGIN\n"
        "  UPDATE authors SET email = lower(email) WHERE id = new.author_id;\n"
        "END;\n"
        "CREATE TRIGGER books_title AFTER UPDATE OF title ON books BEGIN\n"
        "  UPDATE books SET pages = 'renamed' WHERE id = new.id;\n"
        "END;\n"
    )
    project.apply()
    _, path = write_migration(project.folder, "email_required", entities("required"))
    assert path is not None
    assert path.name == "0003_email_required.sqlite.sql"
    text = path.read_text()
    # The views over authors (named_authors through author_names) and the
    # trigger whose body updates authors go; book_titles and books_title stay.
    for name in ("author_names", "named_authors", "books_touch_author"):
        assert text.index(f'"{name}"') < text.index('DROP TABLE "authors"')
    assert "book_titles" not in text
    assert "books_title" not in text.replace("books_touch_author", "")
    project.apply()
    con = sqlite3.connect(project.db_path)
    with con:
        con.execute("INSERT INTO authors (name, email) VALUES ('Dee', 'D@X')")
        con.execute("INSERT INTO books (title, author_id) VALUES ('Five', 4)")
    con.close()
    assert project.query("SELECT count(*) FROM named_authors") == [(4,)]
    assert project.query("SELECT email FROM authors WHERE id = 4") == [("d@x",)]
    assert project.query("SELECT count(*) FROM book_titles") == [(5,)]


FTS_ON_BOOKS = """
CREATE VIRTUAL TABLE books_fts USING fts5(title, content = 'books', content_rowid = 'id');
INSERT INTO books_fts (rowid, title) SELECT id, title FROM books;
CREATE TRIGGER books_fts_insert AFTER INSERT ON books BEGIN
  INSERT INTO books_fts (rowid, title) VALUES (new.id, new.title);
END;
CREATE TRIGGER books_fts_delete AFTER DELETE ON books BEGIN
  INSERT INTO books_fts (books_fts, rowid, title) VALUES ('delete', old.id, old.title);
END;
CREATE TRIGGER books_fts_update AFTER UPDATE OF title ON books BEGIN
  INSERT INTO books_fts (books_fts, rowid, title) VALUES ('delete', old.id, old.title);
  INSERT INTO books_fts (rowid, title) VALUES (new.id, new.title);
END;
"""


def test_rebuild_of_another_table_leaves_the_fts_triggers_alone(
    project: Project,
) -> None:
    """Rebuilding authors does not touch the FTS5 triggers on books; rebuilding books keeps them working."""
    (project.folder / "0002_books_fts.sql").write_text(FTS_ON_BOOKS)
    project.apply()
    plan, path = write_migration(project.folder, "unique_names", entities("unique"))
    assert path is not None
    text = path.read_text()
    assert "books_fts" not in text
    assert plan.edits == []
    project.apply()

    plan, path = write_migration(project.folder, "pages_int", entities("type"))
    assert path is not None
    text = path.read_text()
    assert text.count("DROP TRIGGER") == 3
    assert text.count("CREATE TRIGGER") == 3
    project.apply()
    con = sqlite3.connect(project.db_path)
    with con:
        con.execute("UPDATE books SET title = 'Uno' WHERE id = 1")
    con.close()
    assert project.query("SELECT rowid FROM books_fts WHERE books_fts MATCH 'uno'") == [
        (1,)
    ]
    assert (
        project.query("SELECT rowid FROM books_fts WHERE books_fts MATCH 'one'") == []
    )


def test_view_on_a_dropped_table_is_dropped_and_flagged(project: Project) -> None:
    """A view that reads a dropped table is dropped with it, flagged DESTRUCTIVE."""
    (project.folder / "0002_view.sql").write_text(
        "CREATE VIEW book_titles AS SELECT id, title FROM books;\n"
    )
    project.apply()
    plan, path = write_migration(project.folder, "drop_books", entities("drop_entity"))
    assert path is not None
    assert 'DROP VIEW "book_titles"' in path.read_text()
    assert any("book_titles" in line for line in plan.destructive)
    project.apply()
    assert ("book_titles",) not in project.query("SELECT name FROM sqlite_master")


def test_generation_is_deterministic(project: Project) -> None:
    """The same change renders byte-for-byte the same file twice."""
    define = entities("many_to_many")
    first = render(plan_migration(project.folder, define), "0002_x.sql")
    second = render(plan_migration(project.folder, define), "0002_x.sql")
    assert first == second


def test_no_changes_writes_nothing(project: Project) -> None:
    """When entities and migrations agree nothing is written."""
    plan, path = write_migration(project.folder, "nothing", entities())
    assert plan.changes == ()
    assert path is None
    assert sorted(p.name for p in project.folder.iterdir()) == [
        "0001_create_library.sqlite.sql"
    ]


def test_project_entities_match_the_project_migrations() -> None:
    """The shipped migrations already give the real entities their schema."""
    assert plan_migration(MIGRATIONS).changes == ()


@pytest.fixture
def drifted(tmp_path: Path) -> Path:
    """The project's migrations plus a table the entities do not declare."""
    return copy_migrations(
        tmp_path / "mig",
        {
            f"{LATEST + 1:04d}_legacy.sql": "CREATE TABLE legacy (id INTEGER PRIMARY KEY);\n"
        },
    )


@pytest.mark.slow  # check/makemigration start a throwaway PostgreSQL server
@needs_postgres_binaries  # check covers PostgreSQL through a throwaway server
def test_cli_check_fails_until_the_migration_exists(
    tmp_path: Path, drifted: Path
) -> None:
    """--check exits 1 and writes nothing; NAME writes the file; then --check passes."""
    env = service_env(tmp_path / "db.sqlite3", migrations_path=drifted)
    check = run_cli("makemigration", "--check", env=env)
    assert check.returncode == 1, check.stderr
    assert 'drop table "legacy"' in check.stdout
    assert len({p.name[:4] for p in drifted.glob("*.sql")}) == len(SHIPPED) + 1

    made = run_cli("makemigration", "drop legacy", env=env)
    assert made.returncode == 0, made.stderr
    for half in ("sqlite", "postgres"):  # the header differs: foreign_keys=off
        assert (
            f"wrote {drifted / f'{LATEST + 2:04d}_drop_legacy.{half}.sql'}\n"
            in made.stdout
        )
    assert 'warning: DESTRUCTIVE: drops table "legacy"' in made.stdout
    assert not (tmp_path / "db.sqlite3").exists()  # the live database is never touched

    again = run_cli("makemigration", "--check", env=env)
    assert again.returncode == 0, again.stdout
    assert again.stdout.strip() == "no changes"
    same = run_cli("makemigration", "more", env=env)
    assert same.stdout.strip() == "no changes"
    assert len({p.name[:4] for p in drifted.glob("*.sql")}) == len(SHIPPED) + 2


def test_cli_requires_a_name_without_check(tmp_path: Path) -> None:
    """makemigration without NAME or --check is a usage error (exit 2)."""
    result = run_cli("makemigration", env=service_env(tmp_path / "db.sqlite3"))
    assert result.returncode == 2
    assert "give a NAME" in result.stderr
