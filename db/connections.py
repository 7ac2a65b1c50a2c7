"""Every DB-API connection Pony opens for a Database, so that all can be closed."""

from __future__ import annotations

import threading
from typing import Any

from pony import orm


class Connections:
    """Every DB-API connection Pony opened for one Database, in any thread.

    Pony keeps one connection per thread and no registry of them:
    db.disconnect() closes only the calling thread's, and the others are
    left to the garbage collector when their threads end (Python 3.13
    warns about each). Recorded from an on_connect hook (public API), they
    are all closed when the Database closes, after its threads stopped.
    """

    def __init__(self) -> None:
        self._open: list[Any] = []
        self._lock = threading.Lock()

    def install(self, orm_db: orm.Database) -> None:
        """Record each new connection of orm_db; call before bind()."""

        @orm_db.on_connect
        def _record(_db: Any, connection: Any) -> None:
            with self._lock:
                # Pony closes the connections it drops (after an error):
                # forget those, or a long-running process would hoard them.
                self._open = [c for c in self._open if not _is_closed(c)]
                self._open.append(connection)

    def close_all(self) -> None:
        """Close every recorded connection (closing one twice is harmless)."""
        with self._lock:
            opened, self._open = self._open, []
        for connection in opened:
            connection.close()


def _is_closed(connection: Any) -> bool:
    closed = getattr(connection, "closed", None)  # psycopg2
    if closed is not None:
        return bool(closed)
    try:
        connection.total_changes  # noqa: B018 - sqlite3 raises once closed
    except Exception:
        return True
    return False
