"""The in-process write lock is bounded: a stuck writer cannot stall the rest."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import pytest
from pony.orm import db_session

from db import BusyError, Database, open_database
from service.app import create_app
from service.config import Settings


@contextlib.contextmanager
def writer_holding_the_lock(database: Database) -> Iterator[None]:
    """Another thread writes "slow" and holds the write lock until the block ends."""
    holding = threading.Event()
    release = threading.Event()

    def slow_writer() -> None:
        with database.writing():
            database.metadata.put("slow", "1")
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=slow_writer)
    thread.start()
    try:
        assert holding.wait(10)
        yield
    finally:
        release.set()
        thread.join(10)


def test_second_writer_gives_up_after_the_timeout(db_path: Path) -> None:
    """While one writer holds the write lock, another fails with BusyError, not a hang."""
    database = open_database(db_path, write_lock_timeout=0.3)
    with writer_holding_the_lock(database):
        started = time.monotonic()
        with pytest.raises(BusyError), database.writing():
            database.metadata.put("fast", "2")
        waited = time.monotonic() - started
        assert waited < 5  # bounded by the 0.3 s setting, not by the holder
        with db_session:  # readers are not blocked by the writer
            assert database.metadata.page(10, None).items == []
    with db_session:
        assert [r.key for r in database.metadata.page(10, None).items] == ["slow"]
    with database.writing():  # the lock works again afterwards
        database.metadata.put("after", "3")
    database.close()


def test_lock_waits_are_observed(db_path: Path) -> None:
    """Every write-lock acquisition reports its wait to the observer."""
    database = open_database(db_path, write_lock_timeout=1)
    seen: list[tuple[float, bool]] = []
    database.on_write_lock_wait(lambda seconds, got: seen.append((seconds, got)))
    with database.writing():
        database.metadata.put("k", "v")
    database.close()
    assert len(seen) == 1
    assert seen[0][1] is True


def test_token_lookup_of_a_writing_request_does_not_wait_for_the_write_lock(
    db_path: Path,
) -> None:
    """While another writer holds the lock, a POST with a wrong token is refused at once."""
    database = open_database(db_path, write_lock_timeout=3)
    app = create_app(Settings(database_path=db_path), database=database)
    client = falcon.testing.TestClient(app)
    with writer_holding_the_lock(database):
        started = time.monotonic()
        result = client.simulate_post(
            "/v1/conversations",
            headers={"Authorization": "Bearer sft_not-a-token"},
            json={"title": "t", "members": []},
        )
        waited = time.monotonic() - started
    assert result.status_code == 401
    assert waited < 1  # not the 3 s write-lock timeout (and not a 503)
    database.close()
