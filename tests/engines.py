"""Tests on both engines: settings, environments and direct reads for a target.

The `target` fixture (tests/conftest.py) is an SQLite file or a PostgreSQL
database; every test that uses it, or `settings`, `database`, `app` or
`client` built on it, runs once per engine (test[sqlite], test[postgres]).
`@pytest.mark.engines("sqlite")` keeps a test to the engines it names; its
docstring says why. The helpers here let a test look into the database
directly without caring which engine holds it.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import psycopg2

from db.target import DatabaseTarget, PostgresTarget
from service.config import Settings

ENGINES = ("sqlite", "postgres")
# PostgreSQL through the tests' pgbouncer (transaction pooling): only for
# tests marked engines(..., "pgbouncer"), which name it.
POOLED = "pgbouncer"
Row = tuple[Any, ...]


def settings_for(target: DatabaseTarget, **fields: Any) -> Settings:
    """Settings for the service on target, with any other fields given."""
    if isinstance(target, PostgresTarget):
        return Settings(
            database_url=target.url, direct_database_url=target.direct_url, **fields
        )
    return Settings(database_path=target.path, **fields)


def env_for(target: DatabaseTarget, **settings: Any) -> dict[str, str]:
    """A clean environment for a service process on target: only our SERVICE_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    if isinstance(target, PostgresTarget):
        env["SERVICE_DATABASE_URL"] = target.url
        if target.direct_url is not None:
            env["SERVICE_DIRECT_DATABASE_URL"] = target.direct_url
    else:
        env["SERVICE_DATABASE_PATH"] = str(target.path)
    env.setdefault("SERVICE_PORT", "0")
    for key, value in settings.items():
        env[f"SERVICE_{key.upper()}"] = str(value)
    return env


def connect(target: DatabaseTarget) -> Any:
    """A fresh DB-API connection to target in autocommit mode."""
    if isinstance(target, PostgresTarget):
        con = psycopg2.connect(target.url)
        con.autocommit = True
        return con
    return sqlite3.connect(target.path, isolation_level=None, timeout=10)


def _placeholders(target: DatabaseTarget, sql: str) -> str:
    # The tests write sqlite3's `?`; psycopg2 wants `%s` (and `%%` for `%`).
    if isinstance(target, PostgresTarget):
        return sql.replace("%", "%%").replace("?", "%s")
    return sql


def rows(target: DatabaseTarget, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
    """Every row of one query, on a fresh connection (sqlite3 or psycopg2)."""
    con = connect(target)
    try:
        cur = con.cursor()
        cur.execute(_placeholders(target, sql), params)
        return [tuple(r) for r in cur.fetchall()]
    finally:
        con.close()


def execute(target: DatabaseTarget, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Run one statement on a fresh connection; committed at once."""
    con = connect(target)
    try:
        con.cursor().execute(_placeholders(target, sql), params)
    finally:
        con.close()


# Every B-tree index of the schema, checked against its table by amcheck
# (which Debian's postgresql package ships): an index entry for every row.
_BTREE_CHECK = (
    "SELECT c.relname, bt_index_check(c.oid, true) FROM pg_index i "
    "JOIN pg_class c ON c.oid = i.indexrelid "
    "JOIN pg_am am ON am.oid = c.relam "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE am.amname = 'btree' AND n.nspname = current_schema()"
)


def integrity(target: DatabaseTarget) -> str:
    """'ok' when the database is sound, else what is wrong.

    SQLite: PRAGMA integrity_check of the file. PostgreSQL: amcheck's
    bt_index_check (with heapallindexed) of every B-tree index, which
    raises on the first index that disagrees with its table.
    """
    if not isinstance(target, PostgresTarget):
        return "; ".join(str(r[0]) for r in rows(target, "PRAGMA integrity_check"))
    con = connect(target)
    try:
        cur = con.cursor()
        cur.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        try:
            cur.execute(_BTREE_CHECK)
            checked = cur.fetchall()
        except psycopg2.Error as ex:
            return " ".join(str(ex).split())
        finally:
            cur.execute("DROP EXTENSION amcheck")
        return "ok" if checked else "no index checked"
    finally:
        con.close()
