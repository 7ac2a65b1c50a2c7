"""Closing the database closes every connection Pony opened, in every thread.

Pony keeps one connection per thread and closes only the calling thread's
on disconnect(); the others were left to the garbage collector, which
Python 3.13 reports as "unclosed database" (an error in this suite). The
Database records each connection as it opens and closes them all.
"""

from __future__ import annotations

import threading
from typing import Any

from pony import orm

from db.connections import _is_closed
from service.app import open_for
from service.config import Settings


def _connection_of_a_thread(database: Any) -> Any:
    """Run a query in a new thread's db_session; return that thread's connection."""
    found: list[Any] = []

    def work() -> None:
        with orm.db_session:
            database.orm.select("SELECT 1")
            found.append(database.orm.get_connection())

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert len(found) == 1
    return found[0]


def test_close_closes_the_connections_of_threads_that_ended(
    settings: Settings,
) -> None:
    """Three worker threads' connections, and the opener's, are closed by close()."""
    database = open_for(settings)
    try:
        opened = [_connection_of_a_thread(database) for _ in range(3)]
        with orm.db_session:
            database.orm.select("SELECT 1")
            opened.append(database.orm.get_connection())
        assert len({id(c) for c in opened}) == 4  # one per thread
        assert not any(_is_closed(c) for c in opened)
    finally:
        database.close()
    assert all(_is_closed(c) for c in opened)
