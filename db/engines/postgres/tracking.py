"""PostgreSQL's tracking tables and the small helpers every file run uses."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from db.engines.base.migration import (
    HISTORY_TABLE,
    LOG_TABLE,
    AppliedMigration,
    Migration,
    shorten,
)

TRACKING_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
        version BIGINT PRIMARY KEY,
        name TEXT NOT NULL,
        checksum TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        execution_ms DOUBLE PRECISION NOT NULL,
        dialect TEXT NOT NULL DEFAULT 'postgres',
        how TEXT NOT NULL DEFAULT 'applied'
    )""",
    f"""CREATE TABLE IF NOT EXISTS {LOG_TABLE} (
        id BIGSERIAL PRIMARY KEY,
        at TIMESTAMPTZ NOT NULL DEFAULT now(),
        version BIGINT,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
    )""",
)
INSERT = (
    f"INSERT INTO {HISTORY_TABLE} (version, name, checksum, execution_ms, dialect, how) "
    "VALUES (%s, %s, %s, %s, 'postgres', %s)"
)
SELECT = (
    "SELECT version, name, checksum, "
    """to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), """
    f"execution_ms, how FROM {HISTORY_TABLE}"
)


def has_history(cur: Any) -> bool:
    """Whether the history table exists in the current schema."""
    cur.execute(
        "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = %s",
        (HISTORY_TABLE,),
    )
    return cur.fetchone() is not None


def read_history(con: Any) -> dict[int, AppliedMigration]:
    """The history table's rows by version ({} when it does not exist)."""
    with con.cursor() as cur:
        if not has_history(cur):
            return {}
        cur.execute(SELECT)
        return {
            int(v): AppliedMigration(int(v), n, c, a, float(ms), how)
            for v, n, c, a, ms, how in cur.fetchall()
        }


@contextlib.contextmanager
def transaction(con: Any) -> Iterator[Any]:
    """BEGIN ... COMMIT on an autocommit connection; ROLLBACK on any error."""
    with con.cursor() as cur:
        cur.execute("BEGIN")
        try:
            yield cur
            cur.execute("COMMIT")
        except BaseException:
            if not con.closed:
                cur.execute("ROLLBACK")
            raise


def failure(migration: Migration, number: int, statement: str, ex: Exception) -> str:
    """The one-line error for a failed statement: file, number, text, message."""
    detail = (getattr(ex, "pgerror", None) or str(ex)).strip().splitlines()[0]
    return f"{migration.name} failed at statement {number} ({shorten(statement)}): {detail}"
