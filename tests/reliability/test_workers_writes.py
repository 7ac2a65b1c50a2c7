"""SERVICE_WORKERS on one SQLite file: writers of every worker queue fairly, boundedly."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from db.target import DatabaseTarget, SqliteTarget
from tests.engines import env_for
from tests.reliability.support import (
    Client,
    problem_of,
    serving,
    wait_exit,
    write_lock_held,
)
from tests.reliability.workers import clients_on_every_worker, wait_for_workers

pytestmark = pytest.mark.slow


@pytest.mark.engines("sqlite")
@pytest.mark.timeout(120)
def test_writes_from_two_workers_all_succeed_or_get_a_503_within_the_timeout(
    target: DatabaseTarget,
) -> None:
    """16 clients PUT for 4 s through two workers on one SQLite file: every answer is
    2xx or a 503 problem, none waits past SERVICE_WRITE_LOCK_TIMEOUT (plus the
    request's own time), and every acknowledged write is stored.
    (SQLite: the only engine whose writers queue on one lock.)"""
    assert isinstance(target, SqliteTarget)
    timeout = 0.25
    slack = 0.75  # parsing, the commit, GIL hand-offs on a shared 2-core machine
    with serving(env_for(target, workers=2, write_lock_timeout=timeout)) as server:
        wait_for_workers(server, 2)
        results = _hammer(server.url, clients=16, seconds=4.0)
    statuses = {status for status, _, _, _ in results}
    slowest = max(took for _, took, _, _ in results)
    print(
        f"{len(results)} writes: "
        + ", ".join(
            f"{s}: {sum(1 for r in results if r[0] == s)}" for s in sorted(statuses)
        )
        + f"; slowest {slowest:.3f} s"
    )
    assert statuses <= {200, 201, 503}, statuses
    for status, _, headers, payload in results:
        if status == 503:
            problem_of(status, headers, payload)
            assert int(headers["retry-after"]) >= 1
    assert slowest < timeout + slack, slowest
    con = sqlite3.connect(target.path)
    stored = dict(con.execute("SELECT key, value FROM app_metadata"))
    con.close()
    acknowledged = {
        (body["key"], body["value"])
        for body in (json.loads(p) for s, _, _, p in results if s in (200, 201))
    }
    assert acknowledged <= set(stored.items())


@pytest.mark.engines("sqlite")
@pytest.mark.timeout(120)
def test_a_writer_waiting_for_another_process_holds_up_the_others_only_until_the_timeout(
    target: DatabaseTarget,
) -> None:
    """Another process holds SQLite's write lock for 3 s while two PUTs arrive on
    each worker: one PUT (the write lock's holder) waits it out and gets 201; the
    three others, on either worker, get a 503 after SERVICE_WRITE_LOCK_TIMEOUT
    (1 s), not after the other process's 3 s. (SQLite: its busy handler.)"""
    assert isinstance(target, SqliteTarget)
    timeout = 1.0
    with serving(env_for(target, workers=2, write_lock_timeout=timeout)) as server:
        pids = wait_for_workers(server, 2)
        held = clients_on_every_worker(server, pids, per_worker=2)
        clients = [client for group in held.values() for client in group]
        with write_lock_held(target.path, 3.0) as holder:
            with ThreadPoolExecutor(len(clients)) as pool:
                answers = list(
                    pool.map(
                        lambda pair: _timed_put(pair[1], f"held-{pair[0]}"),
                        enumerate(clients),
                    )
                )
            assert wait_exit(holder, 10) == 0
        for client in clients:
            client.close()
    answers.sort(key=lambda answer: answer[1])
    print([(status, round(took, 2)) for status, took, _, _ in answers])
    [(status, took, _, _)] = answers[-1:]
    assert status == 201
    assert took > 2.0
    for status, took, headers, payload in answers[:-1]:
        assert status == 503, payload[:200]
        problem_of(status, headers, payload)
        assert timeout - 0.1 < took < timeout + 1.0, took


def _timed_put(client: Client, key: str) -> tuple[int, float, dict[str, str], bytes]:
    begun = time.monotonic()
    status, headers, payload = client.request(
        "PUT", f"/v1/metadata/{key}", {"value": key}
    )
    return status, time.monotonic() - begun, headers, payload


def _hammer(
    url: str, clients: int, seconds: float
) -> list[tuple[int, float, dict[str, str], bytes]]:
    """clients threads PUT in a loop for seconds; (status, seconds, headers, body)."""
    results: list[tuple[int, float, dict[str, str], bytes]] = []
    deadline = time.monotonic() + seconds

    def run(number: int) -> None:
        client = Client(url, timeout=30)
        sent = 0
        while time.monotonic() < deadline:
            sent += 1
            begun = time.monotonic()
            status, headers, payload = client.request(
                "PUT", f"/v1/metadata/w{number}-{sent}", {"value": f"{number}-{sent}"}
            )
            results.append((status, time.monotonic() - begun, headers, payload))
        client.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    return results
