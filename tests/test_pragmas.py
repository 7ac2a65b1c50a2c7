"""PRAGMAs are set on every connection Pony opens, in every thread."""

from __future__ import annotations

import threading
from typing import Any

from pony.orm import db_session

from db import Database
from db import sqlite as seam


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
