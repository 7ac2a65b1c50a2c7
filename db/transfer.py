"""Copy every row of an SQLite database into an empty PostgreSQL one.

For the move from one machine to several: the target is migrated to the
code's schema, must be at the source's schema version and hold no rows.
Tables are copied in foreign-key order in one PostgreSQL transaction (a
failure leaves the target as it was), identity sequences are moved past
the copied ids, and the row counts and the search index are verified
before the commit. Token hashes are copied as stored, so every API token
keeps working. One transfer into a database at a time: a second one is
refused at once (a transaction-level advisory lock). Every refusal or
failure is a TransferError naming the file or table and the cause; the
source's own SQLite errors (a corrupt file) are left to the caller, who
names the file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import extras, sql

from db.dialects import sqlite, sqlite_schema
from db.dialects.postgres import connect_arguments, key_number
from db.errors import DatabaseError
from db.migrations.backend import TRACKING_TABLES
from db.target import PostgresTarget

log = logging.getLogger(__name__)

BATCH = 1000


class TransferError(DatabaseError):
    """The transfer was refused or failed; nothing was written to the target."""


@dataclass(frozen=True)
class Copied:
    """What was copied: rows per table, in the order they were copied."""

    tables: dict[str, int]


def copy_order(tables: dict[str, sqlite_schema.Table]) -> list[str]:
    """Table names with every referenced table before the tables referencing it."""
    graph = {
        name: {
            fk.table.lower()
            for fk in table.foreign_keys
            if fk.table.lower() != name and fk.table.lower() in tables
        }
        for name, table in tables.items()
    }
    return list(TopologicalSorter(graph).static_order())


def _versions_sqlite(con: Any, source: Path) -> set[int]:
    if not con.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'"
    ).fetchone():
        raise TransferError(
            f"{source} has no schema_migrations table: not a database of this service"
        )
    return {int(r[0]) for r in con.execute("SELECT version FROM schema_migrations")}


def _refused_row(source: Path, table: str, ex: Exception) -> str:
    """Why PostgreSQL refused a row of table from source, in one line."""
    diag = getattr(ex, "diag", None)
    what = " ".join(
        part
        for part in (
            getattr(diag, "message_primary", None) or _line(ex),
            getattr(diag, "message_detail", None),
        )
        if part
    )
    hint = (
        f"; `PRAGMA foreign_key_check` on {source} lists such rows"
        if getattr(ex, "pgcode", "") == "23503"
        else ""
    )
    return f"table {table} of {source}: PostgreSQL refused a row: {what}{hint}"


def _versions_postgres(cur: Any) -> set[int]:
    cur.execute("SELECT version FROM schema_migrations")
    return {int(r[0]) for r in cur.fetchall()}


def _target_columns(cur: Any, table: str) -> list[str]:
    """Columns of table on the target that take values (not generated ones)."""
    cur.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s "
        "AND is_generated = 'NEVER' ORDER BY ordinal_position",
        (table,),
    )
    return [r[0] for r in cur.fetchall()]


def _rows(con: Any, table: str, columns: list[str]) -> Iterator[list[tuple[Any, ...]]]:
    names = ", ".join(sqlite_schema.quote_identifier(c) for c in columns)
    cursor = con.execute(
        f"SELECT {names} FROM {sqlite_schema.quote_identifier(table)} ORDER BY rowid"
    )
    while batch := cursor.fetchmany(BATCH):
        yield batch


def _reset_sequences(cur: Any, table: str, columns: list[str]) -> None:
    for column in columns:
        cur.execute("SELECT pg_get_serial_sequence(%s, %s)", (table, column))
        sequence = cur.fetchone()[0]
        if sequence is None:
            continue
        query = sql.SQL(
            "SELECT setval(%s, COALESCE((SELECT max({c}) FROM {t}), 0) + 1, false)"
        ).format(c=sql.Identifier(column), t=sql.Identifier(table))
        cur.execute(query, (sequence,))


def _verify(cur: Any, copied: dict[str, int], indexed: int | None) -> None:
    for table, count in copied.items():
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        found = cur.fetchone()[0]
        if found != count:
            raise TransferError(f"{table}: copied {count} rows, the target has {found}")
    if indexed is not None:
        cur.execute("SELECT count(*) FROM messages WHERE body_tsv IS NOT NULL")
        in_index = cur.fetchone()[0]
        if in_index != indexed:
            raise TransferError(
                f"search index: {indexed} messages indexed in the source, "
                f"{in_index} on the target"
            )


def transfer(
    source: Path,
    target: PostgresTarget,
    progress: Callable[[str, int], None] = lambda table, rows: None,
) -> Copied:
    """Copy the SQLite database at source into target; TransferError when refused.

    The source's SQLite errors (corrupt, not a database) propagate.
    """
    if not source.is_file():
        raise TransferError(f"no SQLite database at {source}")
    con = sqlite.connect_read_only(source)
    try:
        versions = _versions_sqlite(con, source)
        try:
            pg = psycopg2.connect(**connect_arguments(target.url, lock_timeout=30))
        except psycopg2.Error as ex:
            raise TransferError(
                f"cannot connect to {target.describe()}: {_line(ex)}"
            ) from ex
        try:
            with pg, pg.cursor() as cur:
                _claim(cur, target)
                _same_versions(cur, versions, source)
                tables = {
                    name: table
                    for name, table in sqlite_schema.read_schema(con).items()
                    if name not in TRACKING_TABLES
                }
                indexed = (
                    con.execute("SELECT count(*) FROM messages_fts").fetchone()[0]
                    if "messages" in tables
                    else None
                )
                copied = _copy(con, cur, tables, copy_order(tables), source, progress)
                _verify(cur, copied, indexed)
        except psycopg2.Error as ex:
            raise TransferError(f"{target.describe()}: {_line(ex)}") from ex
        finally:
            pg.close()
    finally:
        con.close()
    return Copied(copied)


def _line(ex: BaseException) -> str:
    """An error as one line (psycopg2's span several)."""
    return " ".join(str(ex).split())


def _claim(cur: Any, target: PostgresTarget) -> None:
    """This transaction's claim on the target: a second transfer is refused now.

    Without it, a second transfer would wait on the first one's rows for
    lock_timeout and then fail on them.
    """
    cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (key_number("transfer"),))
    if not cur.fetchone()[0]:
        raise TransferError(
            f"another transfer into {target.describe()} is running; wait for it "
            "to finish (a finished one leaves rows, so this one would be refused)"
        )


def _same_versions(cur: Any, versions: set[int], source: Path) -> None:
    target_versions = _versions_postgres(cur)
    if target_versions != versions:
        raise TransferError(
            f"schema versions differ: the SQLite database {source} has "
            f"{sorted(versions)}, the target {sorted(target_versions)}; migrate "
            "both to the same release"
        )


def _copy(
    con: Any,
    cur: Any,
    tables: dict[str, sqlite_schema.Table],
    order: list[str],
    source: Path,
    progress: Callable[[str, int], None],
) -> dict[str, int]:
    for name in order:
        cur.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(name))
        )
        if cur.fetchone()[0]:
            raise TransferError(f"the target already holds rows in {name}: refused")
    copied: dict[str, int] = {}
    for name in order:
        wanted = set(_target_columns(cur, tables[name].name))
        columns = [c.name for c in tables[name].columns if c.name in wanted]
        insert = sql.SQL("INSERT INTO {} ({}) VALUES %s").format(
            sql.Identifier(tables[name].name),
            sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        )
        count = 0
        try:
            for batch in _rows(con, tables[name].name, columns):
                extras.execute_values(
                    cur, insert.as_string(cur), batch, page_size=BATCH
                )
                count += len(batch)
        except (psycopg2.IntegrityError, psycopg2.DataError) as ex:
            raise TransferError(_refused_row(source, tables[name].name, ex)) from ex
        except ValueError as ex:  # psycopg2's own check, before sending
            if "NUL" not in str(ex):
                raise
            raise TransferError(
                f"table {tables[name].name} of {source} holds a text value with a "
                "NUL character (U+0000), which PostgreSQL cannot store: remove it "
                "there and transfer again"
            ) from ex
        copied[tables[name].name] = count
        _reset_sequences(cur, tables[name].name, columns)
        progress(tables[name].name, count)
    return copied
