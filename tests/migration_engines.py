"""The `engine` fixture: one migration test, run on SQLite and on PostgreSQL.

A test module opts in with `pytest_plugins = ("tests.migration_engines",)`
and takes `engine`: a fresh, empty database of either kind (PostgreSQL
from the session's test server, one database per test) and the few
operations a migration test needs, the same on both.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from db import migrate as m
from db.migrations.files import Migration
from db.migrations.history import SchemaState
from db.target import DatabaseTarget, PostgresTarget, SqliteTarget
from tests.helpers import copy_migrations

# An extra file: one SQL text for both engines, or (SQLite, PostgreSQL) halves.
Extra = str | tuple[str, str]


@dataclass
class Engine:
    """A fresh database of one engine and what the migration tests do with it."""

    dialect: str
    target: DatabaseTarget
    tmp: Path

    def folder(self, extra: dict[str, Extra] | None = None, name: str = "mig") -> Path:
        """The shipped files plus extras ("0004_x": sql or (sqlite, postgres))."""
        files: dict[str, str] = {}
        for stem, sql in (extra or {}).items():
            if isinstance(sql, tuple):
                files[f"{stem}.sqlite.sql"], files[f"{stem}.postgres.sql"] = sql
            else:
                files[f"{stem}.sql"] = sql
        return copy_migrations(self.tmp / name, files)

    def discover(self, folder: Path) -> list[Migration]:
        """The folder's files for this engine."""
        return m.discover(folder, self.dialect)

    def migrate(self, folder: Path, **options: Any) -> SchemaState:
        """Run the runner on this database with the folder's files."""
        return m.migrate(self.target, self.discover(folder), **options)

    def _connect(self) -> Any:
        if isinstance(self.target, PostgresTarget):
            con = psycopg2.connect(self.target.url)
            con.autocommit = True
            return con
        return sqlite3.connect(self.target.path, isolation_level=None)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of one query on a fresh connection."""
        con = self._connect()
        try:
            cur = con.cursor()
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
        finally:
            con.close()

    def execute(self, sql: str) -> None:
        """Run one statement on a fresh connection (autocommit)."""
        con = self._connect()
        try:
            con.cursor().execute(sql)
        finally:
            con.close()

    def tables(self) -> set[str]:
        """The database's tables."""
        if self.dialect == "postgres":
            sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        else:
            sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        return {r[0] for r in self.query(sql)}

    def history(self) -> list[int]:
        """Versions in the history table, in order."""
        return [
            r[0]
            for r in self.query(
                "SELECT version FROM schema_migrations ORDER BY version"
            )
        ]

    def log(self) -> list[tuple[Any, ...]]:
        """(version, action) rows of the audit log, in order."""
        return self.query(
            "SELECT version, action FROM schema_migrations_log ORDER BY id"
        )

    def env(self, **settings: Any) -> dict[str, str]:
        """A clean environment for a service process on this database."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
        if isinstance(self.target, PostgresTarget):
            env["SERVICE_DATABASE_URL"] = self.target.url
        else:
            env["SERVICE_DATABASE_PATH"] = str(self.target.path)
        env.setdefault("SERVICE_PORT", "0")
        for key, value in settings.items():
            env[f"SERVICE_{key.upper()}"] = str(value)
        return env


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    """A fresh, empty database on each engine in turn."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        return Engine("postgres", PostgresTarget(url), tmp_path)
    return Engine("sqlite", SqliteTarget(tmp_path / "db.sqlite3"), tmp_path)
