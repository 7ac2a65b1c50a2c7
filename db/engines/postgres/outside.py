"""A `transaction=off` file on PostgreSQL: one statement on its own.

Session-level timeouts around the statement (reset after); for CREATE
INDEX CONCURRENTLY IF NOT EXISTS, an INVALID index an earlier failed or
killed attempt left is dropped first, and the index must be valid before
the history row is written in its own small transaction.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg2

from db.engines.base import sql
from db.engines.base.migration import Migration
from db.engines.postgres.tracking import INSERT, failure, transaction
from db.errors import MigrationError

log = logging.getLogger("db.migrate")


def concurrent_index(statement: str) -> str | None:
    """The index a CREATE INDEX CONCURRENTLY statement builds (None otherwise)."""
    tokens = sql.significant(sql.tokenize(statement, "postgres"))
    words = sql.words(tokens)
    i = sql.skip(words, 1, "unique")
    if words[:1] != ["create"] or words[i : i + 2] != ["index", "concurrently"]:
        return None
    i = sql.skip(words, i + 2, "if", "not", "exists")
    if i >= len(tokens) or not tokens[i].is_name or words[i] == "on":
        return None
    return sql.name_at(tokens, i)[0]


def index_valid(cur: Any, name: str) -> bool | None:
    """Whether the index exists and is valid (None: no such index)."""
    cur.execute(
        "SELECT x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "WHERE c.relname = %s AND c.relnamespace = "
        "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())",
        (name,),
    )
    row = cur.fetchone()
    return None if row is None else bool(row[0])


def apply_outside(
    con: Any, migration: Migration, lock_timeout: str, statement_timeout: str
) -> None:
    """Run the file's one statement outside a transaction, then record it."""
    started = time.perf_counter()
    header = migration.header
    (statement,) = migration.statements
    index = concurrent_index(statement)
    with con.cursor() as cur:
        try:
            cur.execute("SET lock_timeout = %s", (header.lock_timeout or lock_timeout,))
            cur.execute(
                "SET statement_timeout = %s",
                (header.statement_timeout or statement_timeout,),
            )
            if index and index_valid(cur, index) is False:
                # A killed or failed earlier run left the index INVALID.
                log.warning("dropping the INVALID index %s an earlier run left", index)
                cur.execute(
                    f"DROP INDEX CONCURRENTLY IF EXISTS {sql.quote_identifier(index)}"
                )
            try:
                cur.execute(statement)
            except psycopg2.Error as ex:
                hint = (
                    f"; it may have left the INVALID index {index}, which the next "
                    "run drops before trying again"
                    if index
                    else ""
                )
                raise MigrationError(
                    failure(migration, 1, statement, ex)
                    + f" (ran outside a transaction{hint})"
                ) from ex
            if index and not index_valid(cur, index):
                raise MigrationError(
                    f"{migration.name}: index {index} exists but is not valid "
                    "(an earlier build failed); the next run drops and rebuilds it"
                )
        finally:
            cur.execute("RESET lock_timeout")
            cur.execute("RESET statement_timeout")
    elapsed = round((time.perf_counter() - started) * 1000, 3)
    with transaction(con) as cur:
        cur.execute(
            INSERT,
            (migration.version, migration.name, migration.checksum, elapsed, "applied"),
        )
