"""The event reader on SQLite: every committed id is final; data_version as the bell.

Writers take turns (BEGIN IMMEDIATE, across processes too), and the
events table's AUTOINCREMENT key is taken inside the writer's
transaction: ids are handed out in commit order, and a rolled-back id is
handed out again to the next writer. So what a reader sees is always a
prefix of what will ever commit: nothing to settle.

Another process's commit shows in PRAGMA data_version, which changes on
a connection whenever another connection committed to the file: one
call of a few microseconds per poll, on a connection of the watch's own
(its own commits would not change it; it never writes).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from db.engines.base.events import EventRow
from db.engines.sqlite.connection import connect_read_only

_READ = (
    "SELECT id, conversation_id, kind, data, created_at FROM events "
    "WHERE id > $cursor ORDER BY id LIMIT $limit"
)


class SqliteTail:
    """Events in id order: on SQLite, committed means settled."""

    def start(self, orm_db: Any) -> int | None:
        """The newest id (0 when there is none)."""
        rows = orm_db.select("SELECT max(id) FROM events")
        return int(rows[0] or 0) if rows else 0

    def read(self, orm_db: Any, cursor: int, limit: int) -> tuple[list[EventRow], bool]:
        """Every committed event after cursor (at most limit)."""
        rows = orm_db.select(_READ, {"cursor": cursor, "limit": limit})
        return [tuple(r) for r in rows], False


class DataVersionWatch:
    """PRAGMA data_version on a read-only connection of its own."""

    def __init__(self, path: Path) -> None:
        self._con: sqlite3.Connection | None = connect_read_only(path)
        self._version = self._read()

    def _read(self) -> int:
        if self._con is None:
            return 0
        return int(self._con.execute("PRAGMA data_version").fetchone()[0])

    def fileno(self) -> int | None:
        """None: SQLite rings no bell; the reader polls."""
        return None

    def changed(self) -> bool:
        """Whether another connection committed since the last call."""
        version = self._read()
        if version == self._version:
            return False
        self._version = version
        return True

    def close(self) -> None:
        """Close the connection."""
        if self._con is not None:
            self._con.close()
            self._con = None
