"""SQLite as `transfer`'s source: its tables and rows, read-only."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from db.engines.base.migration import TRACKING_TABLES
from db.engines.base.schema import Table
from db.engines.base.sql import quote_identifier
from db.engines.base.transfer import Batch, TransferError
from db.engines.sqlite import introspection
from db.engines.sqlite.connection import connect_read_only

BATCH = 1000


class SqliteSource:
    """An SQLite file, opened read-only for the copy."""

    def __init__(self, con: sqlite3.Connection, path: Path) -> None:
        self._con = con
        self._path = path

    def tables(self) -> dict[str, Table]:
        """Its tables by lower-cased name, the tracking tables left out."""
        return {
            name: table
            for name, table in introspection.read_schema(self._con).items()
            if name not in TRACKING_TABLES
        }

    def versions(self) -> set[int]:
        """The migration versions applied to it; TransferError when untracked."""
        if not self._con.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'"
        ).fetchone():
            raise TransferError(
                f"{self._path} has no schema_migrations table: not a database of "
                "this service"
            )
        rows = self._con.execute("SELECT version FROM schema_migrations")
        return {int(r[0]) for r in rows}

    def search_indexed(self) -> int:
        """How many messages the search index (search_terms) holds."""
        sql = "SELECT count(DISTINCT message_id) FROM search_terms"
        return int(self._con.execute(sql).fetchone()[0])

    def foreign_key_hint(self) -> str:
        """SQLite's own check lists the rows that break a foreign key."""
        return f"`PRAGMA foreign_key_check` on {self._path} lists such rows"

    def rows(self, table: str, columns: list[str]) -> Iterator[Batch]:
        """Every row of table in rowid order, in batches."""
        names = ", ".join(quote_identifier(c) for c in columns)
        cursor = self._con.execute(
            f"SELECT {names} FROM {quote_identifier(table)} ORDER BY rowid"
        )
        while batch := cursor.fetchmany(BATCH):
            yield batch


@contextlib.contextmanager
def source(path: Path) -> Iterator[SqliteSource]:
    """The file at path as a source; TransferError when there is none."""
    if not path.is_file():
        raise TransferError(f"no SQLite database at {path}")
    con = connect_read_only(path)
    try:
        yield SqliteSource(con, path)
    finally:
        con.close()
