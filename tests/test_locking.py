"""Write locks are bounded: a stuck writer cannot stall the rest (on either engine)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import falcon.testing
import pytest
from pony.orm import db_session

from db.database import Database
from db.errors import BusyError
from db.target import DatabaseTarget
from service.app import create_app, open_for
from tests.engines import settings_for


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


def test_second_writer_gives_up_after_the_timeout(target: DatabaseTarget) -> None:
    """While one writer holds the write lock, another fails with BusyError, not a hang.

    SQLite: one writer at a time, so a writer of any key waits at the
    process's write gate. PostgreSQL has no gate: a writer of another key
    goes ahead at once, and only a writer of the same key waits (for the
    key's lock) until lock_timeout gives up.
    """
    database = open_for(settings_for(target, write_lock_timeout=0.3))
    blocked = "fast" if target.dialect == "sqlite" else "slow"
    with writer_holding_the_lock(database):
        if target.dialect == "postgres":
            started = time.monotonic()
            with database.writing():  # another key: no waiting at all
                database.metadata.put("fast", "2")
            assert time.monotonic() - started < 0.3
        started = time.monotonic()
        with pytest.raises(BusyError), database.writing():
            database.metadata.put(blocked, "2")
        waited = time.monotonic() - started
        assert 0.25 < waited < 5  # bounded by the 0.3 s setting, not by the holder
        with db_session:  # readers are not blocked by the writer
            assert [r.key for r in database.metadata.page(10, None).items] == (
                [] if target.dialect == "sqlite" else ["fast"]
            )
    with db_session:
        assert [r.key for r in database.metadata.page(10, None).items] == (
            ["slow"] if target.dialect == "sqlite" else ["fast", "slow"]
        )
        assert database.metadata.get("slow").value == "1"
    with database.writing():  # the lock works again afterwards
        database.metadata.put("after", "3")
    database.close()


def test_lock_waits_are_observed(target: DatabaseTarget) -> None:
    """Every write-gate acquisition reports its wait to the observer (SQLite).

    PostgreSQL has no in-process gate, so there is nothing to observe:
    waits for its row locks end in BusyError past lock_timeout instead.
    """
    database = open_for(settings_for(target, write_lock_timeout=1))
    seen: list[tuple[float, bool]] = []
    database.on_write_lock_wait(lambda seconds, got: seen.append((seconds, got)))
    with database.writing():
        database.metadata.put("k", "v")
    database.close()
    if target.dialect == "postgres":
        assert seen == []
        return
    assert len(seen) == 1
    assert seen[0][1] is True


def test_token_lookup_of_a_writing_request_does_not_wait_for_the_write_lock(
    target: DatabaseTarget,
) -> None:
    """While another writer holds the lock, a POST with a wrong token is refused at once."""
    settings = settings_for(target, write_lock_timeout=3)
    database = open_for(settings)
    app = create_app(settings, database=database)
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
