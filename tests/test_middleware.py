"""One db_session per request: commit on success, roll back otherwise, never leak."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import falcon
import falcon.testing
import pytest
from pony import orm

from db.database import Database
from db.target import DatabaseTarget
from service.app import create_app
from service.config import Settings
from service.problems import Problem
from service.server import Server
from tests.engines import execute, rows


class Probe:
    """Test-only routes that write and then fail in different ways."""

    def __init__(self, database: Database) -> None:
        self._metadata = database.metadata
        self._orm = database.orm
        self._engine = database.engine.dialect.name

    def on_post_crash(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Write, then raise an unexpected exception."""
        self._metadata.put("crash", "x")
        raise ValueError("boom: secret internals")

    def on_post_refuse(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Write, then raise a client error."""
        self._metadata.put("refuse", "x")
        raise Problem(409, "refused after writing")

    def on_post_status(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Write, then answer 400 without raising."""
        self._metadata.put("status", "x")
        resp.status = falcon.HTTP_400
        resp.media = {"detail": "set by hand"}

    def on_post_ok(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Write and succeed."""
        key = req.get_param("key") or "ok"
        self._metadata.put(key, "x")
        resp.media = {"ok": True}

    def on_post_conflict(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Create an entity whose key collides with a stored row when Pony flushes at commit."""
        self._metadata.put("dup-2", "x")
        entity = self._orm.entities["AppMetadata"]
        entity(key="before", value="pony", updated_at=datetime(2026, 1, 1))
        resp.media = {"created": True}

    def on_post_deferred(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Write, then break a constraint the database only checks at COMMIT.

        SQLite: a foreign key, deferred by PRAGMA. PostgreSQL: the test's
        deferred constraint trigger (refuse_at_commit) on this key.
        """
        self._metadata.put("deferred", "x")
        if self._engine == "sqlite":
            self._orm.get_connection().execute("PRAGMA defer_foreign_keys = ON")
            membership = self._orm.entities["Membership"]
            membership(conversation=999, user=999, joined_at=datetime(2026, 1, 1))
        resp.media = {"written": True}

    def on_post_stale(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Read an entity, let another session change its row, then write it."""
        entry = self._orm.entities["AppMetadata"].get(key="before")
        seen = entry.value  # Pony checks this value is unchanged when it writes
        self.between()
        entry.value = seen + " and the probe's"
        resp.media = {"written": True}

    def between(self) -> None:
        """What happens between on_post_stale's read and its write (a test sets it)."""

    def on_get_read(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Read through an entity query inside the request's session."""
        resp.media = {"keys": [r.key for r in self._metadata.page(100, None).items]}


@pytest.fixture
def probe(database: Database) -> Probe:
    """The probe routes' resource."""
    return Probe(database)


@pytest.fixture
def probe_app(settings: Settings, database: Database, probe: Probe) -> falcon.App:  # type: ignore[type-arg]
    """The real app plus the probe routes."""
    app = create_app(settings, database=database)
    names = ("crash", "refuse", "status", "ok", "conflict", "deferred", "stale", "read")
    for name in names:
        app.add_route(f"/probe/{name}", probe, suffix=name)
    return app


def no_session() -> bool:
    """True when the calling thread is outside any db_session.

    Pony's public disconnect() refuses to run inside one.
    """
    probe = orm.Database()
    opened: list[sqlite3.Connection] = []

    # Pony's disconnect() keeps an in-memory database's connection open (closing it
    # would drop the database): close it here, not in the garbage collector.
    @probe.on_connect(provider="sqlite")
    def _keep(_db: orm.Database, connection: sqlite3.Connection) -> None:
        opened.append(connection)

    probe.bind(provider="sqlite", filename=":memory:")
    try:
        probe.disconnect()
    except orm.TransactionError:
        return False
    finally:
        for connection in opened:
            connection.close()
    return True


def keys(target: DatabaseTarget) -> list[str]:
    """Keys stored in the database, read on a connection of its own."""
    return [r[0] for r in rows(target, "SELECT key FROM app_metadata ORDER BY key")]


# PostgreSQL checks no constraint of the schema at COMMIT (none is
# DEFERRABLE): this one is, and refuses the key 'deferred' when it commits.
REFUSE_AT_COMMIT = """
CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'foreign_key_violation';
END $$;
CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON app_metadata
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.key = 'deferred') EXECUTE FUNCTION refuse_at_commit();
"""


@pytest.mark.parametrize(
    ("route", "status"),
    [("crash", 500), ("refuse", 409), ("status", 400)],
)
def test_failed_request_rolls_back_its_writes(
    probe_app: falcon.App,
    target: DatabaseTarget,
    route: str,
    status: int,  # type: ignore[type-arg]
) -> None:
    """A request that fails after writing leaves nothing behind and no session open."""
    client = falcon.testing.TestClient(probe_app)
    result = client.simulate_post(f"/probe/{route}")
    assert result.status_code == status
    assert keys(target) == []
    assert no_session()
    if route == "crash":
        assert result.headers["content-type"] == "application/problem+json"
        assert "boom" not in result.text
        assert "Traceback" not in result.text


def test_successful_request_commits(
    probe_app: falcon.App, target: DatabaseTarget
) -> None:  # type: ignore[type-arg]
    """A successful writing request is committed before the response is sent."""
    client = falcon.testing.TestClient(probe_app)
    assert client.simulate_post("/probe/ok").status_code == 200
    assert keys(target) == ["ok"]
    assert no_session()


def test_failed_commit_is_409_and_keeps_earlier_data(
    probe_app: falcon.App,
    target: DatabaseTarget,  # type: ignore[type-arg]
) -> None:
    """A constraint failing at commit answers 409; the whole request is rolled back."""
    client = falcon.testing.TestClient(probe_app)
    client.simulate_post("/probe/ok", params={"key": "before"})
    result = client.simulate_post("/probe/conflict")
    assert result.status_code == 409
    assert result.headers["content-type"] == "application/problem+json"
    assert keys(target) == ["before"]
    assert no_session()
    assert client.simulate_get("/probe/read").json == {"keys": ["before"]}


def test_commit_refused_by_the_database_is_409_and_releases_the_write_lock(
    probe_app: falcon.App,  # type: ignore[type-arg]
    target: DatabaseTarget,
) -> None:
    """A COMMIT that the database refuses rolls the request back and frees the lock at once."""
    if target.dialect == "postgres":
        execute(target, REFUSE_AT_COMMIT)
    client = falcon.testing.TestClient(probe_app)
    result = client.simulate_post("/probe/deferred")
    assert result.status_code == 409
    assert result.headers["content-type"] == "application/problem+json"
    assert keys(target) == []
    assert no_session()
    started = time.monotonic()
    assert (
        client.simulate_put("/v1/metadata/after", json={"value": "v"}).status_code
        == 201
    )
    # Well under the 5 s write-lock timeout: nobody was left holding it.
    assert time.monotonic() - started < 1
    assert keys(target) == ["after"]


@pytest.mark.engines("postgres")
def test_row_changed_between_read_and_write_is_409(
    probe_app: falcon.App,  # type: ignore[type-arg]
    probe: Probe,
    target: DatabaseTarget,
) -> None:
    """Another session changes a row a request read and then writes: 409, not 500.

    PostgreSQL only: reads take no lock there, so Pony's optimistic check
    catches the change at the write. On SQLite the request's write lock
    keeps every other writer out from its first read on.
    """
    client = falcon.testing.TestClient(probe_app)
    client.simulate_post("/probe/ok", params={"key": "before"})
    probe.between = lambda: execute(  # type: ignore[method-assign]
        target, "UPDATE app_metadata SET value = 'theirs' WHERE key = 'before'"
    )
    result = client.simulate_post("/probe/stale")
    assert result.status_code == 409, result.text
    assert result.headers["content-type"] == "application/problem+json"
    assert rows(target, "SELECT value FROM app_metadata") == [("theirs",)]
    assert no_session()


@pytest.fixture
def served(probe_app: falcon.App) -> Iterator[str]:  # type: ignore[type-arg]
    """The probe app behind a real waitress server on a free port."""
    server = Server(probe_app, host="127.0.0.1", port=0, threads=4, shutdown_timeout=5)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield server.url
    server.stop()
    thread.join(timeout=10)


def call(url: str, method: str) -> tuple[int, dict[str, object]]:
    """One HTTP request; returns status and JSON body."""
    request = urllib.request.Request(
        url, method=method, data=b"" if method == "POST" else None
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as ex:
        return ex.code, json.loads(ex.read())


def test_no_session_leaks_across_requests_under_waitress(
    served: str, target: DatabaseTarget
) -> None:
    """Under concurrent real HTTP, failing requests never leak a session into the next.

    A leaked session would keep its thread's transaction (and the write
    lock) open: later writes on that thread would never commit, and the
    other threads' writes would time out with 503.
    """
    plan = ["crash", "refuse", "status", "read", "ok"] * 40
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(
                lambda route: (
                    route,
                    *call(
                        f"{served}/probe/{route}", "GET" if route == "read" else "POST"
                    ),
                ),
                plan,
            )
        )
    statuses = Counter((route, status) for route, status, _ in results)
    assert statuses == Counter(
        {
            ("crash", 500): 40,
            ("refuse", 409): 40,
            ("status", 400): 40,
            ("read", 200): 40,
            ("ok", 200): 40,
        }
    )
    assert keys(target) == ["ok"]
    started = time.monotonic()
    assert call(f"{served}/probe/ok?key=last", "POST")[0] == 200
    assert time.monotonic() - started < 1  # nobody holds the write lock
    assert keys(target) == ["last", "ok"]
