"""One tokenizer and one statement splitter for both dialects."""

from __future__ import annotations

import re
import sqlite3

import pytest

from db.engines.base import sql
from tests.helpers import MIGRATIONS

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def complete_statement_split(script: str) -> list[str]:
    """SQLite's own reading: pieces joined at ';' until complete_statement() agrees.

    The splitter the runner used before it had one for both dialects,
    kept here as the oracle (without the ';' the new one leaves off).
    """
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if _COMMENTS.sub(" ", buffer).strip(" \t\r\n;"):
                statements.append(buffer.strip().removesuffix(";").rstrip())
            buffer = ""
    if _COMMENTS.sub(" ", buffer).strip(" \t\r\n;"):
        statements.append(buffer.rstrip(";").strip())
    return statements


TRICKY = {
    "trigger-with-case": (
        "CREATE TABLE a (x);\n"
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n"
        "  UPDATE a SET x = CASE WHEN new.x > 0 THEN 1 ELSE 2 END;\n"
        "  INSERT INTO a VALUES ('end;');\n"
        "END;\n"
        "SELECT 1;"
    ),
    "temp-trigger": (
        "CREATE TEMP TRIGGER t BEFORE DELETE ON a BEGIN SELECT 1; SELECT 2; END;\n"
        "CREATE TEMPORARY TRIGGER IF NOT EXISTS u AFTER UPDATE ON a "
        "BEGIN DELETE FROM a; END;"
    ),
    "quotes": (
        "INSERT INTO \"we;ird\" VALUES ('a;b', [c;d], `e;f`);\n"
        "-- a comment; with a semicolon\n"
        "/* and; a block */ SELECT 'x';"
    ),
    "no-final-semicolon": "SELECT 1;\nSELECT 2",
    "comment-only-tail": "SELECT 1;\n-- nothing after;\n",
    "begin-is-its-own-statement": "BEGIN;\nCREATE TABLE b (y);\nCOMMIT;",
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_sqlite_statements_split_as_sqlite_reads_them(name: str) -> None:
    """Trigger bodies (CASE inside), quotes of every kind, comments: as SQLite splits."""
    script = TRICKY[name]
    assert sql.split(script, "sqlite") == complete_statement_split(script)


def test_every_shipped_sqlite_file_splits_as_sqlite_reads_it() -> None:
    """The shipped migrations (the SQLite halves and shared files) split the same."""
    files = [
        p for p in MIGRATIONS.glob("*.sql") if not p.name.endswith(".postgres.sql")
    ]
    assert files
    for path in files:
        script = path.read_text()
        assert sql.split(script, "sqlite") == complete_statement_split(script), path


def test_a_trigger_body_stays_one_statement() -> None:
    """The statements of a trigger's BEGIN ... END are one statement with it."""
    statements = sql.split(TRICKY["trigger-with-case"], "sqlite")
    assert len(statements) == 3
    assert statements[1].startswith("CREATE TRIGGER t")
    assert statements[1].endswith("END")
    assert all(sqlite3.complete_statement(s + ";") for s in statements)


def test_begin_atomic_is_postgres_only() -> None:
    """BEGIN ATOMIC opens a body on PostgreSQL; on SQLite, BEGIN outside a trigger does not."""
    body = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;"
    assert len(sql.split(body, "postgres")) == 1
    assert sql.split("BEGIN; SELECT 1; END;", "sqlite") == ["BEGIN", "SELECT 1", "END"]


def test_strip_comments_keeps_quoted_text() -> None:
    """Comments go; a '--' inside a string stays."""
    text = "SELECT '--not a comment' -- a comment\n/* block */ FROM t"
    assert sql.strip_comments(text, "sqlite") == "SELECT '--not a comment'  \n  FROM t"
