"""SERVICE_WORKERS: a supervisor's workers die, restart, drain, count and log as one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import pytest

from db.target import DatabaseTarget, SqliteTarget
from tests.engines import env_for, rows
from tests.reliability.support import (
    Client,
    metric,
    metric_samples,
    serving,
    wait_exit,
)
from tests.reliability.workers import (
    Load,
    clients_on_every_worker,
    wait_for_workers,
)

pytestmark = pytest.mark.slow


def _seed(url: str) -> None:
    client = Client(url)
    assert client.request("PUT", "/v1/metadata/seed", {"value": "s"})[0] == 201
    client.close()


@pytest.mark.timeout(120)
def test_a_killed_worker_comes_back_while_the_others_keep_answering(
    target: DatabaseTarget,
) -> None:
    """kill -9 of a worker under load: the other serves on and /readyz answers 503
    (1 of 2 workers) until the supervisor's new worker is ready, no request gets a
    5xx, no acknowledged write is lost."""
    with serving(env_for(target, workers=2, threads=4)) as server:
        _seed(server.url)
        pids = wait_for_workers(server, 2)
        held = clients_on_every_worker(server, pids)
        load = Load(server.url, clients=6).start()
        time.sleep(1.0)
        victim, survivor = pids
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        # The survivor's own connection keeps answering, before the new worker is up,
        # and /readyz says the instance is short of a worker until it is.
        client = held[survivor][0]
        assert client.request("GET", "/v1/metadata/seed")[0] == 200
        readiness = []
        while time.monotonic() < killed_at + 1.0:  # the supervisor reaps it at once
            status, _, ready = client.json("GET", "/readyz")
            readiness.append((status, ready["status"], ready["workers"]))
            if status == 503:
                break
            time.sleep(0.01)
        assert readiness[-1] == (503, "not ready", {"ready": 1, "configured": 2}), (
            readiness
        )
        new = wait_for_workers(server, 2, without=(victim,))
        back_at = time.monotonic()
        time.sleep(1.0)
        outcomes = load.stop()
        for clients in held.values():
            for open_client in clients:
                open_client.close()
        # The replacement serves: fresh connections reach both workers again.
        spread = clients_on_every_worker(server, new)
        for clients in spread.values():
            assert clients[0].request("GET", "/v1/metadata/seed")[0] == 200
            clients[0].close()
    statuses = [status for _, status, _ in outcomes]
    assert not [s for s in statuses if s >= 500], statuses
    answered_meanwhile = [t for t, s, _ in outcomes if killed_at < t < back_at and s]
    after = [t for t, s, _ in outcomes if t > back_at and s]
    print(
        f"{len(outcomes)} requests, {statuses.count(0)} connection errors (the killed "
        f"worker's), back in {back_at - killed_at:.2f} s, {len(answered_meanwhile)} "
        "answered meanwhile"
    )
    assert after, "no request answered after the replacement was ready"
    assert survivor in new
    assert victim not in new
    exited = [
        line for line in server.lines if line.get("event.action") == "worker_exited"
    ]
    assert [(e["worker.pid"], e["process.exit_code"]) for e in exited] == [
        (victim, -signal.SIGKILL)
    ]
    assert "signal SIGKILL" in exited[0]["message"]
    acknowledged = {key for _, status, key in outcomes if status in (200, 201) and key}
    stored = {key for (key,) in rows(target, "SELECT key FROM app_metadata")}
    assert acknowledged <= stored


@pytest.mark.timeout(120)
def test_sigterm_drains_the_requests_in_flight_on_every_worker_then_exits_0(
    target: DatabaseTarget,
) -> None:
    """SIGTERM with two requests mid-upload on each worker: all answered 201, exit 0,
    every worker drained, the database closed once (WAL checkpointed on SQLite)."""
    body = json.dumps({"value": "in flight"}).encode()
    with serving(env_for(target, workers=2)) as server:
        pids = wait_for_workers(server, 2)
        held = clients_on_every_worker(server, pids, per_worker=2)
        uploads = []
        for pid, clients in held.items():
            for n, client in enumerate(clients):
                conn = client._conn
                assert conn is not None
                assert conn.sock is not None
                key = f"flight-{pid}-{n}"
                conn.sock.sendall(
                    f"PUT /v1/metadata/{key} HTTP/1.1\r\nHost: x\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body[:5]
                )
                uploads.append((conn, key))
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.7)
        assert server.process.poll() is None  # draining: the uploads are unfinished
        answers = []
        for conn, key in uploads:
            assert conn.sock is not None
            conn.sock.sendall(body[5:])
            response = conn.response_class(conn.sock, method="PUT")
            response.begin()
            answers.append((key, response.status, json.loads(response.read())))
            conn.close()
        code = wait_exit(server.process, 30)
        server.collect()
    assert [(status, answer["value"]) for _, status, answer in answers] == [
        (201, "in flight")
    ] * 4
    assert code == 0, server.lines[-10:]
    drained = {
        line["process.pid"]
        for line in server.lines
        if line.get("message") == "received SIGTERM; draining"
    }
    assert set(pids) <= drained
    closed = [line for line in server.lines if line.get("message") == "database closed"]
    assert [line["process.pid"] for line in closed] == [server.process.pid]
    stored = {key for (key,) in rows(target, "SELECT key FROM app_metadata")}
    assert {key for key, _, _ in answers} <= stored
    if isinstance(target, SqliteTarget):
        wal = target.path.with_name(target.path.name + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0


@pytest.mark.engines("sqlite")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
@pytest.mark.timeout(60)
def test_sigint_and_sighup_stop_every_worker_with_exit_0(
    target: DatabaseTarget, sig: signal.Signals
) -> None:
    """SIGINT (Ctrl-C) and SIGHUP to the supervisor drain every worker as SIGTERM
    does: each worker says it drains, the supervisor exits 0. (One engine: the
    signal path does not touch the database.)"""
    with serving(env_for(target, workers=2)) as server:
        pids = wait_for_workers(server, 2)
        server.process.send_signal(sig)
        code = wait_exit(server.process, 30)
        server.collect()
    assert code == 0, server.lines[-10:]
    drained = {
        line["process.pid"]
        for line in server.lines
        if line.get("message") == "received SIGTERM; draining"
    }
    assert drained == set(pids)
    assert f"received {sig.name}; draining 2 worker(s)" in [
        line.get("message") for line in server.lines
    ]


@pytest.mark.timeout(120)
def test_metrics_add_up_every_worker_and_log_lines_name_their_worker(
    target: DatabaseTarget,
) -> None:
    """5 requests answered by each worker: every scrape, whichever worker answers it,
    counts all 10; each access line's process.pid is the worker that answered, and
    every line of a worker carries its worker.id."""
    with serving(env_for(target, workers=2)) as server:
        pids = wait_for_workers(server, 2)
        held = clients_on_every_worker(server, pids, per_worker=1)
        for clients in held.values():
            for _ in range(5):
                assert clients[0].request("GET", "/v1/metadata/absent")[0] == 404
        seen = []
        for _ in range(6):
            scraper = Client(server.url)  # a new connection: either worker
            samples = metric_samples(scraper)
            scraper.close()
            seen.append(
                metric(
                    samples,
                    "service_http_requests_total",
                    route="/v1/metadata/{key}",
                    method="GET",
                    status="404",
                )
            )
        for clients in held.values():
            clients[0].close()
        time.sleep(0.3)  # access lines are written within 0.1 s
    assert seen == [10.0] * 6, seen
    assert [line for line in server.lines if "raw" in line] == []
    access = [
        line for line in server.lines if line.get("log.logger") == "service.access"
    ]
    absent = [
        line["process.pid"]
        for line in access
        if line["url.path"] == "/v1/metadata/absent"
    ]
    assert sorted(absent.count(pid) for pid in pids) == [5, 5]
    numbers = {
        line["worker.pid"]: line["worker.id"]
        for line in server.lines
        if line.get("event.action") == "worker_started"
    }
    assert sorted(numbers.values()) == [1, 2]
    worker_lines = [line for line in server.lines if line["process.pid"] in pids]
    assert worker_lines
    for line in worker_lines:
        assert line["worker.id"] == numbers[line["process.pid"]], line
    supervisor = [line for line in server.lines if line.get("event.action") == "ready"]
    assert supervisor[0]["process.pid"] == server.process.pid
    assert supervisor[0]["workers"] == 2


@pytest.mark.timeout(120)
def test_workers_stop_when_their_supervisor_is_killed(target: DatabaseTarget) -> None:
    """kill -9 of the supervisor: its workers get SIGTERM, drain and exit within
    the shutdown timeout instead of serving on as orphans holding the port."""
    with serving(env_for(target, workers=2, shutdown_timeout=5)) as server:
        pids = wait_for_workers(server, 2)
        server.process.kill()
        assert wait_exit(server.process, 10) == -signal.SIGKILL
        deadline = time.monotonic() + 15
        alive = set(pids)
        while alive and time.monotonic() < deadline:
            alive = {pid for pid in alive if _running(pid)}
            time.sleep(0.05)
        server.collect()
    assert not alive, f"workers {sorted(alive)} outlived their supervisor"
    drained = {
        line["process.pid"]
        for line in server.lines
        if line.get("message") == "received SIGTERM; draining"
    }
    assert drained == set(pids)


def _running(pid: int) -> bool:
    """pid is a live process (not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.engines("sqlite")
@pytest.mark.timeout(120)
def test_a_worker_dying_at_start_in_a_loop_stops_the_service_with_one_line(
    target: DatabaseTarget,
) -> None:
    """The database file is replaced under a running service, then a worker is
    killed: its replacements refuse to start on the file the service did not open;
    after a few quick deaths the supervisor gives up: one CRITICAL line, exit 1.
    (SQLite: replacing a file is the failure a worker meets at start.)"""
    assert isinstance(target, SqliteTarget)
    with serving(env_for(target, workers=2)) as server:
        victim = wait_for_workers(server, 2)[0]
        copy = target.path.with_name("copy.sqlite3")
        shutil.copy(target.path, copy)
        os.replace(copy, target.path)
        started = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        code = wait_exit(server.process, 60)
        took = time.monotonic() - started
        server.collect()
    assert code == 1
    critical = [line for line in server.lines if line.get("log.level") == "CRITICAL"]
    assert len(critical) == 1, critical
    assert critical[0]["event.action"] == "crash_loop"
    assert "5 times in a row" in critical[0]["message"]
    refusals = [
        line for line in server.lines if "cannot start" in line.get("message", "")
    ]
    assert len(refusals) >= 4
    print(f"gave up after {took:.1f} s")
