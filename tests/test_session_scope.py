"""Every SQL statement a request runs executes inside the request's Pony db_session.

The request's session is the one the middleware enters in process_resource
and leaves in process_response (service.middleware.READ). The test wraps
that object to know, per thread, when it is entered, and traces every
statement on the thread's SQLite connection (sqlite3's public
set_trace_callback on the connection Pony's public get_connection returns).
A statement outside it (run before the session, after it, or in a db_session
of its own) fails the test.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import falcon.testing
import pytest
from pony import orm

import service.middleware
from db.database import Database
from db.target import DatabaseTarget
from service.app import create_app, open_for
from tests.engines import settings_for
from tests.messaging_helpers import ADMIN_TOKEN, bearer, make_user, post, start

pytestmark = pytest.mark.engines("sqlite")


class TrackedSession:
    """Pony's db_session, noting per thread whether the request entered it."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._local = threading.local()

    @property
    def active(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    def __enter__(self) -> None:
        self._session.__enter__()
        self._local.depth = getattr(self._local, "depth", 0) + 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._session.__exit__(kind, value, tb)  # commit/rollback run inside
        finally:
            self._local.depth -= 1


@pytest.fixture
def traced(
    monkeypatch: pytest.MonkeyPatch, target: DatabaseTarget
) -> Iterator[tuple[falcon.testing.TestClient, list[tuple[str, bool]]]]:
    """A client whose requests' statements are recorded with 'inside the session'."""
    settings = settings_for(target, admin_token=ADMIN_TOKEN)
    database: Database = open_for(settings)
    # Built first: create_app reads the schema version at start-up, not in a request.
    client = falcon.testing.TestClient(create_app(settings, database=database))
    tracked = TrackedSession(service.middleware.READ)
    monkeypatch.setattr(service.middleware, "READ", tracked)
    statements: list[tuple[str, bool]] = []
    with orm.db_session:
        # Pony pools one connection per thread; TestClient calls the app here.
        connection = database.orm.get_connection()
    assert isinstance(connection, sqlite3.Connection)
    connection.set_trace_callback(lambda sql: statements.append((sql, tracked.active)))
    try:
        yield client, statements
    finally:
        connection.set_trace_callback(None)
        database.close()


def test_every_statement_of_every_route_runs_in_the_requests_session(
    traced: tuple[falcon.testing.TestClient, list[tuple[str, bool]]],
) -> None:
    """Users, tokens, conversations, messages, search, metadata: no SQL outside the session."""
    client, statements = traced
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ann = make_user(client, "ann")
    make_user(client, "bob")
    conversation = start(client, ann, ["bob"])
    message = post(client, ann, conversation, "hello session scope")["id"]
    calls = [
        ("GET", "/readyz", {}, None),
        ("GET", "/v1/me", bearer(ann), None),
        ("GET", "/v1/conversations", bearer(ann), None),
        ("GET", f"/v1/conversations/{conversation}", bearer(ann), None),
        ("GET", f"/v1/conversations/{conversation}/messages", bearer(ann), None),
        ("GET", "/v1/search", bearer(ann), {"q": "session"}),
        ("PUT", "/v1/metadata/colour", admin, None),
        ("GET", "/v1/metadata/colour", admin, None),
        ("GET", "/v1/metadata", admin, None),
        ("DELETE", "/v1/metadata/colour", admin, None),
        (
            "DELETE",
            f"/v1/conversations/{conversation}/messages/{message}",
            bearer(ann),
            None,
        ),
        ("GET", "/v1/conversations/999", bearer(ann), None),  # a 404: rolled back
    ]
    for method, path, headers, params in calls:
        body = {"value": "blue"} if method == "PUT" else None
        result = client.simulate_request(
            method, path, headers=headers, params=params, json=body
        )
        assert result.status_code < 500, (method, path, result.text)
    assert len(statements) > len(calls)  # the trace saw the requests' SQL
    outside = [sql for sql, inside in statements if not inside]
    assert outside == []
