"""Lock contention: another process's writer, and a writer stuck in this one."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import service_env
from tests.messaging_helpers import ADMIN, ADMIN_TOKEN
from tests.reliability.support import (
    Client,
    metric,
    metric_samples,
    problem_of,
    serving,
    wait_exit,
    write_lock_held,
)

pytestmark = pytest.mark.slow

BUSY_TIMEOUT = 5.0  # db.engines.sqlite.connection.BUSY_TIMEOUT_MS


def timed_put(
    url: str, key: str, value: str
) -> tuple[int, dict[str, str], bytes, float]:
    """One PUT on a fresh connection; returns status, headers, body, seconds."""
    client = Client(url, timeout=30)
    begun = time.monotonic()
    try:
        status, headers, payload = client.request(
            "PUT", f"/v1/metadata/{key}", {"value": value}
        )
    finally:
        client.close()
    return status, headers, payload, time.monotonic() - begun


def assert_busy(status: int, headers: dict[str, str], payload: bytes) -> None:
    """A 503 problem with a Retry-After in whole seconds."""
    assert status == 503, payload[:300]
    problem_of(status, headers, payload)
    assert int(headers["retry-after"]) >= 1


def read_while(url: str, until: threading.Event) -> list[tuple[int, float]]:
    """GET an existing key and /readyz in a loop; (status, seconds) of each."""
    client = Client(url, timeout=30)
    seen: list[tuple[int, float]] = []
    try:
        while not until.is_set():
            for path in ("/v1/metadata/seed", "/readyz"):
                begun = time.monotonic()
                status, _, _ = client.request("GET", path)
                seen.append((status, time.monotonic() - begun))
            time.sleep(0.05)
    finally:
        client.close()
    return seen


@pytest.mark.timeout(90)
def test_writes_wait_for_another_process_then_get_503_past_busy_timeout(
    tmp_path: Path,
) -> None:
    """A second writer process: short holds are waited out, long ones give 503."""
    db = tmp_path / "db.sqlite3"
    with serving(service_env(db)) as server:
        client = Client(server.url)
        assert client.request("PUT", "/v1/metadata/seed", {"value": "s"})[0] == 201

        with write_lock_held(db, 2.0) as holder:
            status, _, payload, waited = timed_put(server.url, "short", "1")
            assert status == 201, payload[:300]
            # It waited for the other process instead of failing at once.
            assert 1.0 < waited < BUSY_TIMEOUT, waited
            assert wait_exit(holder, 10) == 0
        print(f"write behind a 2 s lock from another process: 201 after {waited:.2f} s")

        stop = threading.Event()
        with (
            ThreadPoolExecutor(2) as pool,
            write_lock_held(db, BUSY_TIMEOUT + 2.5) as holder,
        ):
            reads = pool.submit(read_while, server.url, stop)
            status, headers, payload, waited = timed_put(server.url, "long", "2")
            stop.set()
            assert_busy(status, headers, payload)
            assert BUSY_TIMEOUT - 0.5 < waited < BUSY_TIMEOUT + 2, waited
            seen = reads.result(timeout=30)
            assert wait_exit(holder, 10) == 0
        print(
            f"write behind a 7.5 s lock: 503 after {waited:.2f} s; "
            f"{len(seen)} reads meanwhile, slowest {max(s for _, s in seen):.3f} s"
        )
        assert seen
        assert {status for status, _ in seen} == {200}
        assert max(seconds for _, seconds in seen) < 1.0

        # The refused write left nothing behind; the other process's write is there.
        assert client.request("GET", "/v1/metadata/long")[0] == 404
        status, _, body = client.json("GET", "/v1/metadata/other-process")
        assert (status, body["value"]) == (200, "held")
        status, _, _, waited = timed_put(server.url, "long", "3")
        assert status == 201
        assert waited < 1.0
        errors = [line for line in server.lines if line.get("level") == "ERROR"]
        assert errors == []
        client.close()


def wait_for_lock_holder(client: Client, before: float) -> None:
    """Poll /metrics until one more write-lock acquisition was recorded."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        samples = metric_samples(client)
        if metric(samples, "service_db_write_lock_wait_seconds_count") > before:
            return
        time.sleep(0.02)
    raise AssertionError("the first PUT never took the write lock")


@pytest.mark.timeout(90)
def test_writer_stuck_on_the_lock_does_not_block_other_writers_forever(
    tmp_path: Path,
) -> None:
    """One PUT holding the in-process lock: the others get 503 after ~1 s; reads go on."""
    db = tmp_path / "db.sqlite3"
    env = service_env(db, write_lock_timeout=1, threads=8)
    with serving(env) as server:
        client = Client(server.url)
        assert client.request("PUT", "/v1/metadata/seed", {"value": "s"})[0] == 201
        before = metric(
            metric_samples(client), "service_db_write_lock_wait_seconds_count"
        )
        stop = threading.Event()
        with (
            ThreadPoolExecutor(8) as pool,
            write_lock_held(db, BUSY_TIMEOUT + 2.5) as holder,
        ):
            # A takes this process's write lock, then waits in SQLite's busy
            # handler for the other process: it holds the lock for ~5 s.
            first = pool.submit(timed_put, server.url, "a", "1")
            wait_for_lock_holder(client, before)
            reads = pool.submit(read_while, server.url, stop)
            queued: list[Any] = [
                pool.submit(timed_put, server.url, key, "1") for key in "bcd"
            ]
            behind = [future.result(timeout=20) for future in queued]
            a_status, a_headers, a_payload, a_waited = first.result(timeout=20)
            stop.set()
            seen = reads.result(timeout=20)
            assert wait_exit(holder, 10) == 0
        for status, headers, payload, waited in behind:
            assert_busy(status, headers, payload)
            assert 0.8 < waited < 2.5, waited
        print(
            "writers queued behind the stuck one: "
            + ", ".join(f"503 after {w:.2f} s" for *_, w in behind)
            + f"; the stuck one: {a_status} after {a_waited:.2f} s"
        )
        assert_busy(a_status, a_headers, a_payload)
        assert BUSY_TIMEOUT - 0.5 < a_waited < BUSY_TIMEOUT + 2
        assert seen
        assert {status for status, _ in seen} == {200}
        assert max(seconds for _, seconds in seen) < 1.0

        # The lock was given back: writes work again, promptly.
        status, _, _, waited = timed_put(server.url, "e", "1")
        assert status == 201
        assert waited < 1.0
        for key in "abcd":
            assert client.request("GET", f"/v1/metadata/{key}")[0] == 404

        samples = metric_samples(client)
        assert metric(samples, "service_db_busy_total") == 4
        assert metric(samples, "service_db_write_lock_timeouts_total") == 3
        assert metric(samples, "service_db_write_lock_wait_seconds_count") >= 6
        # Three waits of about a second each were recorded.
        assert metric(samples, "service_db_write_lock_wait_seconds_sum") > 2.4
        assert (
            metric(
                samples,
                "service_http_requests_total",
                route="/v1/metadata/{key}",
                method="PUT",
                status="503",
            )
            == 4
        )
        client.close()


@pytest.mark.timeout(90)
def test_reads_with_a_token_never_wait_for_another_process_writer(
    tmp_path: Path,
) -> None:
    """While another process holds the write lock, authenticated GETs answer at once.

    Recording that a token was used is not a write on the request path:
    8 users whose last_used_at is due read in parallel without waiting.
    """
    db = tmp_path / "db.sqlite3"
    env = service_env(db, admin_token=ADMIN_TOKEN, threads=4)
    with serving(env) as server:
        client = Client(server.url)
        tokens = []
        for i in range(8):
            handle = f"reader_{i}"
            status, _, _ = client.request(
                "POST",
                "/v1/users",
                {"handle": handle, "display_name": handle},
                headers=ADMIN,
            )
            assert status == 201
            status, _, payload = client.request(
                "POST", f"/v1/users/{handle}/tokens", headers=ADMIN
            )
            tokens.append(json.loads(payload)["token"])
        client.close()

        def me(token: str) -> tuple[int, float]:
            reader = Client(server.url)
            begun = time.monotonic()
            try:
                status, _, _ = reader.request(
                    "GET", "/v1/me", headers={"Authorization": f"Bearer {token}"}
                )
            finally:
                reader.close()
            return status, time.monotonic() - begun

        with write_lock_held(db, seconds=BUSY_TIMEOUT + 3):
            with ThreadPoolExecutor(max_workers=8) as pool:
                answers = list(pool.map(me, tokens))
            health = Client(server.url)
            begun = time.monotonic()
            assert health.request("GET", "/healthz")[0] == 200
            health.close()
            assert time.monotonic() - begun < 1
        assert [status for status, _ in answers] == [200] * 8
        assert max(seconds for _, seconds in answers) < 2, answers
