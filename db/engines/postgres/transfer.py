"""PostgreSQL as `transfer`'s sink: rows inserted in one transaction.

On the direct URL when one is set; the transaction waits at most
LOCK_TIMEOUT for a lock (SET LOCAL) and commits only when the copy was
verified (the block ends without an error), so a failure leaves nothing
behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg2
from psycopg2 import extras, sql

from db.engines.base.transfer import Batch, RowRefusedError, TransferError
from db.engines.postgres.connection import connect_arguments
from db.engines.postgres.locks import key_number
from db.target import PostgresTarget

BATCH = 1000
LOCK_TIMEOUT = "30s"


class PostgresSink:
    """A PostgreSQL database written inside one transaction."""

    def __init__(self, cur: Any, target: PostgresTarget) -> None:
        self._cur = cur
        self._target = target

    def claim(self) -> None:
        """This transaction's claim on the target: a second transfer is refused now.

        Without it, a second transfer would wait on the first one's rows for
        lock_timeout and then fail on them.
        """
        self._cur.execute(
            "SELECT pg_try_advisory_xact_lock(%s)", (key_number("transfer"),)
        )
        if not self._cur.fetchone()[0]:
            raise TransferError(
                f"another transfer into {self._target.describe()} is running; wait "
                "for it to finish (a finished one leaves rows, so this one would "
                "be refused)"
            )

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
        try:
            extras.execute_values(
                self._cur, insert.as_string(self._cur), batch, page_size=BATCH
            )
        except (psycopg2.IntegrityError, psycopg2.DataError) as ex:
            raise RowRefusedError(
                f"PostgreSQL refused a row: {_refusal(ex)}",
                foreign_key=getattr(ex, "pgcode", "") == "23503",
            ) from ex
        except ValueError as ex:  # psycopg2's own check, before sending
            if "NUL" not in str(ex):
                raise
            raise RowRefusedError(
                "holds a text value with a NUL character (U+0000), which "
                "PostgreSQL cannot store: remove it there and transfer again"
            ) from ex

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
        """How many messages the search index (search_terms) holds now."""
        self._cur.execute("SELECT count(DISTINCT message_id) FROM search_terms")
        return int(self._cur.fetchone()[0])


def _line(ex: BaseException) -> str:
    """An error as one line (psycopg2's span several)."""
    return " ".join(str(ex).split())


def _refusal(ex: Exception) -> str:
    """Why PostgreSQL refused a row, from its diagnostics, in one line."""
    diag = getattr(ex, "diag", None)
    return " ".join(
        part
        for part in (
            getattr(diag, "message_primary", None) or _line(ex),
            getattr(diag, "message_detail", None),
        )
        if part
    )


@contextlib.contextmanager
def sink(target: PostgresTarget) -> Iterator[PostgresSink]:
    """target as a sink: committed when the block ends, rolled back on an error.

    Every psycopg2 error is a TransferError naming the target, in one line.
    """
    target = target.direct()
    try:
        pg = psycopg2.connect(**connect_arguments(target.url))
    except psycopg2.Error as ex:
        raise TransferError(
            f"cannot connect to {target.describe()}: {_line(ex)}"
        ) from ex
    try:
        with pg, pg.cursor() as cur:
            cur.execute("SET LOCAL lock_timeout = %s", (LOCK_TIMEOUT,))
            yield PostgresSink(cur, target)
    except psycopg2.Error as ex:
        raise TransferError(f"{target.describe()}: {_line(ex)}") from ex
    finally:
        pg.close()
