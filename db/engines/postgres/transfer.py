"""PostgreSQL as `transfer`'s sink: rows inserted in one transaction.

The connection carries the service's session settings, with a longer
lock_timeout; the transaction commits only when the copy was verified
(the block ends without an error), so a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg2
from psycopg2 import extras, sql

from db.engines.base.transfer import Batch
from db.engines.postgres.connection import connect_arguments
from db.target import PostgresTarget

BATCH = 1000


class PostgresSink:
    """A PostgreSQL database written inside one transaction."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def versions(self) -> set[int]:
        """The migration versions applied to it."""
        self._cur.execute("SELECT version FROM schema_migrations")
        return {int(r[0]) for r in self._cur.fetchall()}

    def has_rows(self, table: str) -> bool:
        """Whether table holds any row."""
        self._cur.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))
        )
        return bool(self._cur.fetchone()[0])

    def columns(self, table: str) -> list[str]:
        """Columns of table that take values (not generated ones)."""
        self._cur.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s "
            "AND is_generated = 'NEVER' ORDER BY ordinal_position",
            (table,),
        )
        return [r[0] for r in self._cur.fetchall()]

    def insert(self, table: str, columns: list[str], batch: Batch) -> None:
        """Insert a batch with one multi-row INSERT."""
        insert = sql.SQL("INSERT INTO {} ({}) VALUES %s").format(
            sql.Identifier(table),
            sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        )
        extras.execute_values(
            self._cur, insert.as_string(self._cur), batch, page_size=BATCH
        )

    def reset_sequences(self, table: str, columns: list[str]) -> None:
        """Move each column's identity sequence past its largest value."""
        for column in columns:
            self._cur.execute("SELECT pg_get_serial_sequence(%s, %s)", (table, column))
            sequence = self._cur.fetchone()[0]
            if sequence is None:
                continue
            query = sql.SQL(
                "SELECT setval(%s, COALESCE((SELECT max({c}) FROM {t}), 0) + 1, false)"
            ).format(c=sql.Identifier(column), t=sql.Identifier(table))
            self._cur.execute(query, (sequence,))

    def count(self, table: str) -> int:
        """How many rows table holds now."""
        self._cur.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        )
        return int(self._cur.fetchone()[0])

    def search_indexed(self) -> int:
        """How many messages have a search vector."""
        self._cur.execute("SELECT count(*) FROM messages WHERE body_tsv IS NOT NULL")
        return int(self._cur.fetchone()[0])


@contextlib.contextmanager
def sink(target: PostgresTarget) -> Iterator[PostgresSink]:
    """target as a sink: committed when the block ends, rolled back on an error."""
    pg = psycopg2.connect(**connect_arguments(target.url, lock_timeout=30))
    try:
        with pg, pg.cursor() as cur:
            yield PostgresSink(cur)
    finally:
        pg.close()
