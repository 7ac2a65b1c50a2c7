"""PRAGMAs are set on every connection Pony opens, in every thread.

SQLite only: PRAGMAs are SQLite's; PostgreSQL's session settings travel in
the connection's startup options (tests/test_concurrency.py checks
lock_timeout at work).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from pony.orm import db_session

from db.database import Database
from db.engines.sqlite import connection as seam

pytestmark = pytest.mark.engines("sqlite")


def test_pragmas_read_back_from_two_threads(database: Database) -> None:
    """Two worker threads each get their own connection with the production PRAGMAs."""
    seen: dict[str, tuple[int, dict[str, Any]]] = {}
    factories: list[object] = []

    def probe(name: str) -> None:
        with db_session:
            con = database.orm.get_connection()
            seen[name] = (id(con), seam.read_pragmas(con))
            factories.append(con.text_factory)

    threads = [threading.Thread(target=probe, args=(f"t{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (id1, p1), (id2, p2) = seen["t0"], seen["t1"]
    assert factories == [str, str]  # sqlite3's C decoding, not Pony's Python one
    assert id1 != id2
    for pragmas in (p1, p2):
        assert pragmas == {
            "journal_mode": "wal",
            "synchronous": 1,
            "foreign_keys": 1,
            "busy_timeout": 5000,
            "journal_size_limit": 67108864,
            "mmap_size": 134217728,
            "cache_size": 2000,
            "temp_store": 2,
        }


def test_a_forked_child_opens_its_own_connection_with_the_pragmas(
    database: Database,
) -> None:
    """A connection never crosses a fork: the child gets a new one, PRAGMAs set."""

    def connection_id() -> tuple[int, int]:
        with db_session:
            con = database.orm.get_connection()
            return id(con), seam.read_pragmas(con)["foreign_keys"]

    parent = connection_id()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            child = connection_id()
            os._exit(0 if child[0] != parent[0] and child[1] == 1 else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert connection_id() == parent  # the parent keeps its own
