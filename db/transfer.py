"""Copy every row of an SQLite database into an empty PostgreSQL one.

For the move from one machine to several: the target is migrated to the
code's schema, must be at the source's schema version and hold no rows.
Tables are copied in foreign-key order in one PostgreSQL transaction (a
failure leaves the target as it was), identity sequences are moved past
the copied ids, and the row counts and the search index are verified
before the commit. Token hashes are copied as stored, so every API token
keeps working.
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

from db.engines.postgres.operations import connect_arguments
from db.engines.sqlite import connection as sqlite
from db.engines.sqlite import introspection as sqlite_schema
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


def _versions_sqlite(con: Any) -> set[int]:
    return {int(r[0]) for r in con.execute("SELECT version FROM schema_migrations")}


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
    """Copy the SQLite database at source into target; TransferError when refused."""
    if not source.is_file():
        raise TransferError(f"no SQLite database at {source}")
    con = sqlite.connect_read_only(source)
    try:
        tables = {
            name: table
            for name, table in sqlite_schema.read_schema(con).items()
            if name not in TRACKING_TABLES
        }
        order = copy_order(tables)
        versions = _versions_sqlite(con)
        indexed = (
            con.execute("SELECT count(*) FROM messages_fts").fetchone()[0]
            if "messages" in tables
            else None
        )
        pg = psycopg2.connect(**connect_arguments(target.url, lock_timeout=30))
        try:
            with pg, pg.cursor() as cur:
                copied = _copy(con, cur, tables, order, versions, progress)
                _verify(cur, copied, indexed)
        finally:
            pg.close()
    finally:
        con.close()
    return Copied(copied)


def _copy(
    con: Any,
    cur: Any,
    tables: dict[str, sqlite_schema.Table],
    order: list[str],
    versions: set[int],
    progress: Callable[[str, int], None],
) -> dict[str, int]:
    target_versions = _versions_postgres(cur)
    if target_versions != versions:
        raise TransferError(
            f"schema versions differ: the SQLite database has {sorted(versions)}, "
            f"the target {sorted(target_versions)}; migrate both to the same release"
        )
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
        for batch in _rows(con, tables[name].name, columns):
            extras.execute_values(cur, insert.as_string(cur), batch, page_size=BATCH)
            count += len(batch)
        copied[tables[name].name] = count
        _reset_sequences(cur, tables[name].name, columns)
        progress(tables[name].name, count)
    return copied
