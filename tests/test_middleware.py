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
from pathlib import Path

import falcon
import falcon.testing
import pytest
from pony.orm import core as pony_core

from db import Database
from db.session import connection, in_session, require_orm_session
from service.app import create_app
from service.config import Settings
from service.problems import Problem
from service.server import Server


class Probe:
    """Test-only routes that write and then fail in different ways."""

    def __init__(self, database: Database) -> None:
        self._store = database.store
        self._orm = database.orm

    def on_post_crash(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Write, then raise an unexpected exception."""
        self._store.put_metadata("crash", "x")
        raise ValueError("boom: secret internals")

    def on_post_refuse(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Write, then raise a client error."""
        self._store.put_metadata("refuse", "x")
        raise Problem(409, "refused after writing")

    def on_post_status(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Write, then answer 400 without raising."""
        self._store.put_metadata("status", "x")
        resp.status = falcon.HTTP_400
        resp.media = {"detail": "set by hand"}

    def on_post_ok(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Write and succeed."""
        key = req.get_param("key") or "ok"
        self._store.put_metadata(key, "x")
        resp.media = {"ok": True}

    def on_post_conflict(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Create a row that collides with an existing key only when Pony flushes at commit."""
        require_orm_session()
        self._orm.execute(
            "INSERT INTO app_metadata VALUES ('dup', 'raw', '2026-01-01 00:00:00')"
        )
        self._store.put_metadata("dup-2", "x")
        entity = self._store._metadata
        entity(key="dup", value="pony", updated_at=entity.get(key="dup-2").updated_at)
        resp.media = {"created": True}

    def on_post_adopt(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Write with SQL, then with an entity in the same unit; fail if asked."""
        self._store.put_metadata("sql", "x")
        require_orm_session()
        entity = self._store._metadata
        entity(key="entity", value="y", updated_at=datetime(2026, 1, 1))
        if req.get_param("fail"):
            raise Problem(409, "refused after both writes")
        resp.media = {"ok": True}

    def on_post_deferred(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Write, then break a foreign key that SQLite only checks at COMMIT."""
        self._store.put_metadata("deferred", "x")
        con = connection(self._orm)
        con.execute("PRAGMA defer_foreign_keys = ON")
        con.execute(
            "INSERT INTO memberships (conversation_id, user_id, joined_at)"
            " VALUES (999, 999, '2026-01-01 00:00:00')"
        )
        resp.media = {"written": True}

    def on_get_depth(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Report how deep the thread's db_session nesting is once the ORM is in use."""
        require_orm_session()
        resp.media = {"depth": pony_core.local.db_context_counter}


@pytest.fixture
def probe_app(settings: Settings, database: Database) -> falcon.App:  # type: ignore[type-arg]
    """The real app plus the probe routes."""
    app = create_app(settings, database=database)
    probe = Probe(database)
    for name in (
        "crash",
        "refuse",
        "status",
        "ok",
        "conflict",
        "adopt",
        "deferred",
        "depth",
    ):
        app.add_route(f"/probe/{name}", probe, suffix=name)
    return app


def keys(db_path: Path) -> list[str]:
    """Keys stored in the file."""
    con = sqlite3.connect(db_path)
    try:
        return [r[0] for r in con.execute("SELECT key FROM app_metadata ORDER BY key")]
    finally:
        con.close()


@pytest.mark.parametrize(
    ("route", "status"),
    [("crash", 500), ("refuse", 409), ("status", 400)],
)
def test_failed_request_rolls_back_its_writes(
    probe_app: falcon.App,
    db_path: Path,
    route: str,
    status: int,  # type: ignore[type-arg]
) -> None:
    """A request that fails after writing leaves nothing behind and no session open."""
    client = falcon.testing.TestClient(probe_app)
    result = client.simulate_post(f"/probe/{route}")
    assert result.status_code == status
    assert keys(db_path) == []
    assert not in_session()
    if route == "crash":
        assert result.headers["content-type"] == "application/problem+json"
        assert "boom" not in result.text
        assert "Traceback" not in result.text


def test_successful_request_commits(probe_app: falcon.App, db_path: Path) -> None:  # type: ignore[type-arg]
    """A successful writing request is committed before the response is sent."""
    client = falcon.testing.TestClient(probe_app)
    assert client.simulate_post("/probe/ok").status_code == 200
    assert keys(db_path) == ["ok"]
    assert not in_session()


def test_failed_commit_is_409_and_keeps_earlier_data(
    probe_app: falcon.App,
    db_path: Path,  # type: ignore[type-arg]
) -> None:
    """A constraint failing at commit answers 409; the whole request is rolled back."""
    client = falcon.testing.TestClient(probe_app)
    client.simulate_post("/probe/ok", params={"key": "before"})
    result = client.simulate_post("/probe/conflict")
    assert result.status_code == 409
    assert result.headers["content-type"] == "application/problem+json"
    assert keys(db_path) == ["before"]
    assert not in_session()
    assert client.simulate_get("/probe/depth").json == {"depth": 1}


def test_entity_code_joins_the_transaction_sql_began(
    probe_app: falcon.App,  # type: ignore[type-arg]
    db_path: Path,
) -> None:
    """SQL then entity writes in one request commit together, or roll back together."""
    client = falcon.testing.TestClient(probe_app)
    assert client.simulate_post("/probe/adopt", params={"fail": "1"}).status_code == 409
    assert keys(db_path) == []
    assert not in_session()
    assert client.simulate_post("/probe/adopt").status_code == 200
    assert keys(db_path) == ["entity", "sql"]
    assert not in_session()


def test_commit_refused_by_sqlite_is_409_and_releases_the_write_lock(
    probe_app: falcon.App,  # type: ignore[type-arg]
    db_path: Path,
) -> None:
    """A COMMIT that SQLite refuses rolls the request back and frees the lock at once."""
    client = falcon.testing.TestClient(probe_app)
    result = client.simulate_post("/probe/deferred")
    assert result.status_code == 409
    assert result.headers["content-type"] == "application/problem+json"
    assert keys(db_path) == []
    assert not in_session()
    started = time.monotonic()
    assert (
        client.simulate_put("/v1/metadata/after", json={"value": "v"}).status_code
        == 201
    )
    # Well under the 5 s write-lock timeout: nobody was left holding it.
    assert time.monotonic() - started < 1
    assert keys(db_path) == ["after"]


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
    served: str, db_path: Path
) -> None:
    """Under concurrent real HTTP, failing requests never leak a session into the next."""
    plan = ["crash", "refuse", "status", "depth", "ok"] * 40
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(
                lambda route: (
                    route,
                    *call(
                        f"{served}/probe/{route}", "GET" if route == "depth" else "POST"
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
            ("depth", 200): 40,
            ("ok", 200): 40,
        }
    )
    depths = {body["depth"] for route, _, body in results if route == "depth"}
    assert depths == {1}
    assert keys(db_path) == ["ok"]
