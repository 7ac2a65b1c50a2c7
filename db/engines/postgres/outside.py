"""A `transaction=off` file on PostgreSQL: one statement on its own.

Outside a transaction SET LOCAL cannot bound the statement, so it runs
on a connection of its own whose timeouts travel in the startup packet:
a session of its own, which a transaction-pooling pgbouncer cannot give
(it refuses the options, or drops them with ignore_startup_parameters);
such a file then stops with one line asking for the direct URL. For
CREATE INDEX CONCURRENTLY IF NOT EXISTS, an INVALID index an earlier
failed or killed attempt left is dropped first, and the index must be
valid before the history row is written in its own small transaction.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg2

from db.engines.base import sql
from db.engines.base.migration import Migration
from db.engines.postgres.connection import connect, pooled
from db.engines.postgres.tracking import INSERT, failure, transaction
from db.errors import MigrationError, StartupError
from db.target import PostgresTarget

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


def _needs_direct(migration: Migration, why: str) -> MigrationError:
    return MigrationError(
        f"{migration.name} runs outside a transaction (transaction=off), which "
        f"needs a database session of its own, and {why}: a transaction-pooling "
        "connection pooler? Set SERVICE_DIRECT_DATABASE_URL to a connection that "
        "bypasses it (docs/postgres.md, Behind a connection pooler)"
    )


def session_for(
    target: PostgresTarget, migration: Migration, settings: dict[str, str]
) -> Any:
    """A direct session with settings in its startup packet; MigrationError if none."""
    options = " ".join(f"-c {name}={value}" for name, value in settings.items())
    try:
        con = connect(target, "outside", options=options)
    except StartupError as ex:
        if "startup parameter" in str(ex):
            raise _needs_direct(
                migration, f"the server refused session options ({ex})"
            ) from ex
        raise
    try:
        # A pooler told to ignore the options would drop them silently.
        behind = pooled(con)
    except BaseException:
        con.close()
        raise
    if behind:
        con.close()
        raise _needs_direct(migration, "this connection goes through a pooler")
    return con


def apply_outside(
    target: PostgresTarget,
    record_on: Any,
    migration: Migration,
    lock_timeout: str,
    statement_timeout: str,
) -> None:
    """Run the file's one statement on a session of its own, then record it on record_on."""
    started = time.perf_counter()
    header = migration.header
    (statement,) = migration.statements
    index = concurrent_index(statement)
    settings = {
        "lock_timeout": header.lock_timeout or lock_timeout,
        "statement_timeout": header.statement_timeout or statement_timeout,
    }
    if record_on.server_version >= 140000:
        # A killed runner's statement stops within a second instead of running
        # on (and holding its locks) until it ends by itself.
        settings["client_connection_check_interval"] = "1s"
    con = session_for(target, migration, settings)
    try:
        with con.cursor() as cur:
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
        con.close()
    elapsed = round((time.perf_counter() - started) * 1000, 3)
    with transaction(record_on) as cur:
        cur.execute(
            INSERT,
            (migration.version, migration.name, migration.checksum, elapsed, "applied"),
        )
