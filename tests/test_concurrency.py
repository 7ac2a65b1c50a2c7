"""Concurrent writers over real HTTP: upserts of one key, posts to one conversation.

On SQLite the process's write gate makes writers take turns; on
PostgreSQL they run at once and the server orders them (row locks, an
advisory lock per new key). Either way every request succeeds, and a lock
held too long by someone else is a 503 with Retry-After, never a hang.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import falcon.testing
import psycopg2
import pytest

from db.database import Database
from db.engines.postgres.operations import key_number
from db.target import DatabaseTarget, PostgresTarget
from service.app import create_app, open_for
from service.server import Server
from tests.engines import rows, settings_for
from tests.messaging_helpers import ADMIN_TOKEN, bearer, make_user, post, start
from tests.reliability.support import Client

WRITERS = 16


@contextlib.contextmanager
def serving(database: Database, target: DatabaseTarget) -> Iterator[str]:
    """The app on database behind a real waitress server (8 threads); yields its URL."""
    app = create_app(settings_for(target, admin_token=ADMIN_TOKEN), database=database)
    server = Server(app, host="127.0.0.1", port=0, threads=8, shutdown_timeout=5)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.stop()
        thread.join(timeout=10)


def at_once(count: int, call: Any) -> list[Any]:
    """Run call(i) for i < count on as many threads, released together."""
    barrier = threading.Barrier(count)

    def run(i: int) -> Any:
        barrier.wait(timeout=30)
        return call(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_concurrent_puts_of_one_new_key_all_succeed(
    target: DatabaseTarget, database: Database
) -> None:
    """16 PUTs of the same new key at once: one 201, fifteen 200, never 409 or 500."""
    with serving(database, target) as url:

        def put(key: str, i: int) -> tuple[int, bytes]:
            client = Client(url)
            try:
                status, _, payload = client.request(
                    "PUT",
                    f"/v1/metadata/{key}",
                    {"value": f"writer {i}"},
                    headers=bearer(ADMIN_TOKEN),
                )
            finally:
                client.close()
            return status, payload

        for round_no in range(5):
            key = f"race.{round_no}"
            answers = at_once(WRITERS, lambda i, key=key: put(key, i))
            statuses = Counter(status for status, _ in answers)
            assert statuses == {201: 1, 200: WRITERS - 1}, [
                payload[:200] for status, payload in answers if status >= 300
            ]
            written = {json.loads(payload)["value"] for _, payload in answers}
            assert len(written) == WRITERS
            (stored,) = rows(
                target, "SELECT value FROM app_metadata WHERE key = ?", (key,)
            )
            assert stored[0] in written


def test_concurrent_posts_to_one_conversation_all_succeed(
    target: DatabaseTarget, database: Database
) -> None:
    """16 members post 8 messages each into one conversation at once: all 201, none lost."""
    admin = falcon.testing.TestClient(
        create_app(settings_for(target, admin_token=ADMIN_TOKEN), database=database)
    )
    handles = [f"poster{i}" for i in range(WRITERS)]
    tokens = [make_user(admin, handle) for handle in handles]
    cid = start(admin, tokens[0], handles[1:])
    with serving(database, target) as url:

        def post_eight(i: int) -> list[tuple[int, Any]]:
            client = Client(url)
            answers = []
            try:
                for n in range(8):
                    status, _, payload = client.request(
                        "POST",
                        f"/v1/conversations/{cid}/messages",
                        {"body": f"{handles[i]} says {n}"},
                        headers=bearer(tokens[i]),
                    )
                    answers.append((status, json.loads(payload)))
            finally:
                client.close()
            return answers

        answers = [a for batch in at_once(WRITERS, post_eight) for a in batch]
    assert [status for status, _ in answers] == [201] * (WRITERS * 8), [
        body for status, body in answers if status != 201
    ][:3]
    ids = sorted(body["id"] for _, body in answers)
    assert len(set(ids)) == WRITERS * 8
    stored = rows(
        target, "SELECT id FROM messages WHERE conversation_id = ? ORDER BY id", (cid,)
    )
    assert [r[0] for r in stored] == ids
    ((last,),) = rows(
        target, "SELECT last_message_at FROM conversations WHERE id = ?", (cid,)
    )
    ((newest,),) = rows(
        target, "SELECT max(created_at) FROM messages WHERE conversation_id = ?", (cid,)
    )
    assert last == newest


def test_concurrent_deletes_of_one_row_answer_204_once_then_404(
    target: DatabaseTarget, database: Database
) -> None:
    """16 DELETEs of one message, then of one membership, at once: one 204, the rest 404."""
    admin = falcon.testing.TestClient(
        create_app(settings_for(target, admin_token=ADMIN_TOKEN), database=database)
    )
    ann = make_user(admin, "ann")
    make_user(admin, "bob")
    cid = start(admin, ann, ["bob"])
    base = f"/v1/conversations/{cid}"
    with serving(database, target) as url:

        def delete(path: str) -> tuple[int, bytes]:
            client = Client(url)
            try:
                status, _, payload = client.request("DELETE", path, headers=bearer(ann))
            finally:
                client.close()
            return status, payload

        for round_no in range(3):
            mid = post(admin, ann, cid, f"delete me {round_no}")["id"]
            for path in (f"{base}/messages/{mid}", f"{base}/members/bob"):
                answers = at_once(WRITERS, lambda _i, path=path: delete(path))
                statuses = Counter(status for status, _ in answers)
                assert statuses == {204: 1, 404: WRITERS - 1}, [
                    payload[:200] for status, payload in answers if status >= 500
                ]
            added = admin.simulate_post(
                f"{base}/members", json={"handle": "bob"}, headers=bearer(ann)
            )
            assert added.status_code == 201


@contextlib.contextmanager
def holding(target: DatabaseTarget, *statements: str) -> Iterator[None]:
    """Another connection runs statements in a transaction left open until the end."""
    assert isinstance(target, PostgresTarget)
    con = psycopg2.connect(target.url)
    try:
        with con.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        yield
    finally:
        con.rollback()
        con.close()


def timed(call: Any) -> tuple[falcon.testing.Result, float]:
    """call()'s result and the seconds it took."""
    began = time.monotonic()
    result = call()
    return result, time.monotonic() - began


def assert_busy(result: falcon.testing.Result) -> None:
    """A 503 problem with a Retry-After in whole seconds."""
    assert result.status_code == 503, result.text
    assert result.headers["content-type"] == "application/problem+json"
    assert int(result.headers["retry-after"]) >= 1


@pytest.mark.engines("postgres")
def test_writer_blocked_on_a_row_lock_past_the_timeout_is_503(
    target: DatabaseTarget,
) -> None:
    """A row locked by another session: its writers get 503 after lock_timeout; others go on.

    PostgreSQL only: SERVICE_WRITE_LOCK_TIMEOUT is its lock_timeout, and
    other rows stay writable. (On SQLite another process's write lock
    covers the whole file: tests/reliability/test_locks.py.)
    """
    settings = settings_for(target, admin_token=ADMIN_TOKEN, write_lock_timeout=1)
    database = open_for(settings)
    try:
        client = falcon.testing.TestClient(create_app(settings, database=database))
        admin = bearer(ADMIN_TOKEN)

        def put(key: str, value: str) -> falcon.testing.Result:
            return client.simulate_put(
                f"/v1/metadata/{key}", json={"value": value}, headers=admin
            )

        assert put("held", "before").status_code == 201
        ann = make_user(client, "ann")
        cid = start(client, ann, [])
        locks = (
            "SELECT 1 FROM app_metadata WHERE key = 'held' FOR UPDATE",
            f"SELECT 1 FROM conversations WHERE id = {cid} FOR UPDATE",
            # The lock db.domain.metadata takes before it creates the key 'new'.
            f"SELECT pg_advisory_xact_lock({key_number('app_metadata', 'new')})",
        )
        with holding(target, *locks):
            for blocked in (
                lambda: put("held", "during"),
                lambda: client.simulate_delete("/v1/metadata/held", headers=admin),
                lambda: put("new", "during"),
                lambda: client.simulate_post(
                    f"/v1/conversations/{cid}/messages",
                    json={"body": "during"},
                    headers=bearer(ann),
                ),
            ):
                result, waited = timed(blocked)
                assert_busy(result)
                assert 0.9 < waited < 3, waited
            # Other rows, and reads of the locked ones, do not wait.
            result, waited = timed(lambda: put("free", "during"))
            assert result.status_code == 201
            result, waited_read = timed(
                lambda: client.simulate_get("/v1/metadata/held", headers=admin)
            )
            assert result.json["value"] == "before"
            assert max(waited, waited_read) < 0.9
        # Nothing of the refused requests was kept; the locks are free again.
        assert rows(target, "SELECT count(*) FROM messages") == [(0,)]
        assert put("held", "after").status_code == 200
        assert put("new", "after").status_code == 201
        assert busy_answers(client) == 4
    finally:
        database.close()


def busy_answers(client: falcon.testing.TestClient) -> float:
    """service_db_busy_total as /metrics reports it."""
    for line in client.simulate_get("/metrics").text.splitlines():
        if line.startswith("service_db_busy_total "):
            return float(line.split()[1])
    raise AssertionError("no service_db_busy_total in /metrics")
