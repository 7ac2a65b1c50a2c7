"""64 concurrent keep-alive clients, 90 % reads and 10 % writes, on one process."""

from __future__ import annotations

import collections
import http.client
import random
import threading
import time

import pytest

from db.target import DatabaseTarget
from tests import engines
from tests.reliability.support import Client, env_seconds, serving

pytestmark = pytest.mark.slow

CLIENTS = 64
KEYS = 200
WRITE_SHARE = 0.10
# The issue asks for 30 s; RELIABILITY_LOAD_SECONDS=5 makes local runs quicker.
SECONDS = env_seconds("RELIABILITY_LOAD_SECONDS", 30.0)
# The second engine runs half as long: the same mix, a shorter window.
ENGINE_SHARE = {"sqlite": 1.0, "postgres": 0.5}


class Tally:
    """Outcomes of every request, shared by the client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: collections.Counter[tuple[str, int]] = collections.Counter()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.locked: list[bytes] = []


def client_loop(url: str, seed: int, until: float, tally: Tally) -> None:
    """Read or write random keys until the deadline, recording each outcome."""
    rng = random.Random(seed)
    client = Client(url, timeout=30)
    statuses: collections.Counter[tuple[str, int]] = collections.Counter()
    latencies: list[float] = []
    errors: list[str] = []
    locked: list[bytes] = []
    seq = 0
    try:
        while time.monotonic() < until:
            key = f"load.{rng.randrange(KEYS):03d}"
            write = rng.random() < WRITE_SHARE
            begun = time.perf_counter()
            try:
                if write:
                    seq += 1
                    status, _, payload = client.request(
                        "PUT", f"/v1/metadata/{key}", {"value": f"c{seed}.{seq}"}
                    )
                else:
                    status, _, payload = client.request("GET", f"/v1/metadata/{key}")
            except (OSError, http.client.HTTPException) as ex:
                errors.append(f"{type(ex).__name__}: {ex}")
                continue
            latencies.append(time.perf_counter() - begun)
            statuses[("PUT" if write else "GET", status)] += 1
            if b"locked" in payload:
                locked.append(payload[:200])
    finally:
        client.close()
        with tally.lock:
            tally.statuses.update(statuses)
            tally.latencies.extend(latencies)
            tally.errors.extend(errors)
            tally.locked.extend(locked)


@pytest.mark.timeout(SECONDS + 90)
def test_mixed_load_has_no_5xx_no_locked_and_no_connection_errors(
    target: DatabaseTarget,
) -> None:
    """64 clients for the configured time: only 200/201, no 'locked', no resets.

    The configured time on SQLite, half of it on PostgreSQL.
    """
    seconds = SECONDS * ENGINE_SHARE[target.dialect]
    with serving(engines.env_for(target)) as server:
        seeder = Client(server.url)
        for k in range(KEYS):
            status, _, _ = seeder.request(
                "PUT", f"/v1/metadata/load.{k:03d}", {"value": "seed"}
            )
            assert status == 201
        seeder.close()

        tally = Tally()
        began = time.monotonic()
        until = began + seconds
        threads = [
            threading.Thread(
                target=client_loop, args=(server.url, n, until, tally), daemon=True
            )
            for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 60)
            assert not thread.is_alive(), "a client hung"
        elapsed = time.monotonic() - began
        code = server.stop()
    lat = sorted(tally.latencies)
    total = len(lat)
    p50 = lat[total // 2] * 1000 if lat else 0.0
    p99 = lat[min(total - 1, int(total * 0.99))] * 1000 if lat else 0.0
    print(
        f"{CLIENTS} clients, {elapsed:.1f} s: {total} requests, "
        f"{total / elapsed:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {lat[-1] * 1000 if lat else 0:.0f} ms; {dict(tally.statuses)}"
    )
    assert tally.errors == []
    assert tally.locked == []
    assert {status for _, status in tally.statuses} <= {200, 201}
    writes = sum(n for (method, _), n in tally.statuses.items() if method == "PUT")
    assert 0.05 < writes / total < 0.15
    assert total > seconds * 50  # a stalled server would show here first
    errors_logged = [
        line
        for line in server.lines
        if line.get("log.level") == "ERROR"
        or "raw" in line
        or "busy" in str(line.get("message"))
    ]
    assert errors_logged == []
    access = [
        line for line in server.lines if line.get("log.logger") == "service.access"
    ]
    assert len(access) == total + KEYS
    assert all(line.get("http.request.id") for line in access)
    assert code == 0
    assert engines.integrity(target) == "ok"
