"""The benchmark harness: its verdicts, its round order, its obvious-Pony stack."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from bench import baseline, data, load, obvious, probes, procs, report, summary
from bench import postgres as pg
from bench.micro import MESSAGES_PATH, call
from tests.pg import find_bindir

ROLES = {"service": "service", "baseline": "baseline", "obvious": "obvious"}


def _run(stack: str, workload: str, rps: float, p99: float = 10.0) -> dict[str, Any]:
    return {
        "stack": stack,
        "workload": workload,
        "connections": 16,
        "rps": rps,
        "p50_ms": 1.0,
        "p99_ms": p99,
        "errors": 0,
        "rss_peak_kb": 1024,
        "server_cpu_ms_per_req": 0.1,
    }


def _service_row(runs: list[dict[str, Any]], workload: str) -> dict[str, Any]:
    rows = summary.summarize(runs, ROLES, (workload,), (16,))
    return next(r for r in rows if r["stack"] == "service")


def test_floor_is_per_workload() -> None:
    """0.70 of the baseline meets PUT's 0.65 floor and misses GET's 0.80."""
    for workload, missed in (("put", False), ("get", True)):
        runs = [
            _run("service", workload, 700),
            _run("baseline", workload, 1000),
            _run("obvious", workload, 100),
        ]
        row = _service_row(runs, workload)
        assert bool(row["misses"]) is missed, row["verdict"]
        assert row["rps_ratio"] == 0.7


def test_service_must_beat_obvious_by_a_third() -> None:
    """Above the floor but under 1.3x obvious Pony's req/s is a miss."""
    runs = [
        _run("service", "get", 950),
        _run("baseline", "get", 1000),
        _run("obvious", "get", 800),
    ]
    row = _service_row(runs, "get")
    assert row["vs_obvious"] == 950 / 800
    assert row["verdict"] == f"MISS <{summary.MIN_VS_OBVIOUS}x obvious"


def test_healthz_has_no_rps_floor_but_a_p99_one() -> None:
    """/healthz at half the baseline is ok; its p99 at 2x is a miss."""
    slow = [_run("service", "healthz", 500), _run("baseline", "healthz", 1000)]
    assert _service_row(slow, "healthz")["verdict"] == "ok"
    late = [
        _run("service", "healthz", 1000, p99=20.0),
        _run("baseline", "healthz", 1000),
    ]
    assert _service_row(late, "healthz")["misses"] == ["p99>1.5x"]


def test_below_aim_is_a_note_not_a_miss() -> None:
    """0.85 of the baseline on GET meets the floor and is marked below aim."""
    runs = [
        _run("service", "get", 850),
        _run("baseline", "get", 1000),
        _run("obvious", "get", 100),
    ]
    assert _service_row(runs, "get")["verdict"] == "ok, below aim"


def test_rounds_rotate_so_each_stack_leads_in_turn() -> None:
    """Over three rounds each of three stacks runs first, second and third once."""
    stacks: list[Any] = ["service", "baseline", "obvious"]
    orders = [load.rotation(stacks, r) for r in (1, 2, 3)]
    for position in range(3):
        assert sorted(o[position] for o in orders) == sorted(stacks)


def _answers(app: Any) -> dict[str, Any]:
    shapes = {}
    for name, request in (
        ("get", ("GET", "/v1/metadata/" + data.key_name(0))),
        ("put", ("PUT", "/v1/metadata/" + data.key_name(1), b'{"value":"v"}')),
        ("post", ("POST", MESSAGES_PATH, b'{"body":"hello"}')),
        ("latest", ("GET", MESSAGES_PATH + "?limit=50")),
    ):
        status, body = call(app, *request)
        answer = json.loads(body)
        if name == "latest":
            assert len(answer["items"]) == 50
            assert answer["items"][0]["body"] == "hello"
            answer = {**answer, **answer["items"][0]}
        shapes[name] = (status, sorted(answer))
    return shapes


def test_obvious_pony_answers_like_the_baseline(tmp_path: Path) -> None:
    """The obvious stack, on a migrated file, gives the baseline's statuses and keys."""
    obvious_db, baseline_db = tmp_path / "obvious.sqlite3", tmp_path / "base.sqlite3"
    load.prepare_migrated_db(obvious_db)
    load.prepare_baseline_db(baseline_db)
    # Each app's connection belongs to this thread: closed here, not by the GC.
    app, conns = baseline.open_app(baseline_db)
    try:
        expected = _answers(app)
    finally:
        conns.close()
    app, pony_db = obvious.open_app(obvious_db)
    try:
        assert _answers(app) == expected
    finally:
        pony_db.disconnect()
    assert expected["post"][0] == "201 Created"


def test_the_postgres_row_has_no_target_and_stands_beside_sqlite() -> None:
    """--engine postgres: its row gets ratios and "no target", never a miss."""
    roles = {**ROLES, "service-pg": "postgres"}
    runs = [
        _run("service", "put", 800),
        _run("service-pg", "put", 200, p99=40.0),  # would miss every floor
        _run("baseline", "put", 1000),
        _run("obvious", "put", 500),
    ]
    rows = {r["stack"]: r for r in summary.summarize(runs, roles, ("put",), (16,))}

    on_pg = rows["service-pg"]
    assert on_pg["verdict"] == "no target"
    assert "misses" not in on_pg
    assert on_pg["vs_sqlite"] == 0.25
    assert on_pg["p99_vs_sqlite"] == 4.0
    assert on_pg["rps_ratio"] == 0.2
    assert report.misses(list(rows.values())) == []
    beside = report.engine_table(list(rows.values())).splitlines()
    assert beside[0].split()[:4] == ["workload", "conns", "sqlite", "req/s"]
    assert beside[2].split()[:5] == ["put", "16", "800", "200", "0.25"]


def test_workers_rows_are_held_to_issue_24s_ratios_over_one_worker() -> None:
    """--workers 2: reads need 1.4x one worker, writes 1.1x, no errors; the row of
    the service with workers stands beside the one-process service."""
    roles = {**ROLES, "service-w2": "workers"}
    runs = [
        _run("service", "get", 1000),
        _run("service-w2", "get", 1300),  # 1.3x: misses 1.4
        _run("service", "put", 500),
        _run("service-w2", "put", 600),  # 1.2x: meets 1.1
        _run("service", "healthz", 100),
        _run("service-w2", "healthz", 50),  # no floor
    ]
    rows = summary.summarize(runs, roles, ("get", "put", "healthz"), (16,))
    many = {r["workload"]: r for r in rows if r["stack"] == "service-w2"}
    assert many["get"]["verdict"] == "MISS <1.4x one worker"
    assert many["put"]["verdict"] == "ok"
    assert many["put"]["vs_one"] == 1.2
    assert many["healthz"]["verdict"] == "no floor"
    assert report.misses(rows) == ["get c=16: MISS <1.4x one worker"]
    beside = report.workers_table(rows).splitlines()
    assert beside[3].split()[:5] == ["put", "16", "500", "600", "1.20"]
    assert load.Options(workers=2).all_stacks() == (
        "service",
        "service-w2",
        "baseline",
        "obvious",
    )


def test_engine_postgres_puts_its_stack_after_the_service() -> None:
    """The service on PostgreSQL joins --stacks right after the service on SQLite."""
    assert load.Options(engine="postgres").all_stacks() == (
        "service",
        "service-pg",
        "baseline",
        "obvious",
    )
    assert load.Options(engine="postgres", stacks=("baseline",)).all_stacks() == (
        "service-pg",
        "baseline",
    )
    assert load.Options().all_stacks() == load.STACKS


@pytest.mark.slow
def test_the_postgres_stack_is_pinned_filled_alike_and_answers(tmp_path: Path) -> None:
    """Server and backends on the service's core; the SQLite rows; the probes pass."""
    if find_bindir() is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    core = sorted(os.sched_getaffinity(0))[0]
    server = pg.start_server(core)
    service = None
    try:
        url = pg.prepare(server, core)
        service = procs.start_service(url, 2, "WARNING", tmp_path / "log", core)
        service.wait_ready()
        shapes = probes.check_api("service-pg", service)
        postmaster = server.postmaster_pid()
        backends = [
            int(p.name)
            for p in Path("/proc").glob("[0-9]*")
            if (p / "stat").exists()
            and (p / "stat").read_text().rsplit(")", 1)[1].split()[1] == str(postmaster)
        ]
        affinities = {pid: os.sched_getaffinity(pid) for pid in [postmaster, *backends]}
        con = psycopg2.connect(url)
        with con.cursor() as cur:
            counts = {}
            for table in (*probes.TABLES, "users", "conversations"):
                cur.execute(f"SELECT count(*) FROM {table}")
                counts[table] = cur.fetchone()[0]
            cur.execute("SELECT current_setting('synchronous_commit')")
            synchronous_commit = cur.fetchone()[0]
        con.close()
    finally:
        if service is not None:
            service.stop()
        server.stop()

    assert backends
    assert set(map(frozenset, affinities.values())) == {frozenset({core})}
    assert counts == {
        "app_metadata": data.KEYS,
        "messages": data.MESSAGES + 1,  # and the probe's post
        "memberships": 1,
        "api_tokens": 1,
        "users": 1,
        "conversations": 1,
    }
    assert synchronous_commit == "off"
    assert shapes["get"] == ["key", "updated_at", "value"]
    assert pg.server_cpu_seconds(server) is None  # stopped: nothing to count


def test_the_migration_timing_folder_is_one_the_runner_accepts(tmp_path: Path) -> None:
    """make_migrations writes the SQLite 0001 as a shared file plus one-table files."""
    from db import migrate

    scripts = data.make_migrations(tmp_path, 3)
    found = migrate.discover(tmp_path, "sqlite")

    assert [m.version for m in found] == [1, 2, 3]
    sqlite_half = data.MIGRATIONS / "0001_create_app_metadata.sqlite.sql"
    assert scripts[0] == sqlite_half.read_text()
    assert (tmp_path / "0001_create_app_metadata.sql").read_text() == scripts[0]


def _events_report(p99: float, kb: float, ratio: float) -> dict[str, Any]:
    return {
        "latency": [
            {"subscribers": n, "p50_ms": 1.0, "p99_ms": p99} for n in (100, 1000, 2000)
        ],
        "memory": {"kb_per_subscriber": kb},
        "throughput": {"rps_ratio": ratio},
    }


def test_events_bench_names_each_missed_target() -> None:
    """bench events misses p99 >= 100 ms at 1000, >= 20 KB each, req/s ratio < 0.9."""
    from bench import events

    assert events.verdicts(_events_report(99.9, 19.9, 0.9)) == []
    missed = events.verdicts(_events_report(100.0, 20.0, 0.89))
    assert len(missed) == 3
    assert "p99" in missed[0]
    assert "KB" in missed[1]
    assert "ratio" in missed[2]


def test_events_bench_percentile_is_nearest_rank() -> None:
    """The p99 of 1..100 is 99, the p50 is 50; one sample is every percentile."""
    from bench import events

    values = [float(v) for v in range(100, 0, -1)]
    assert events.percentile(values, 0.99) == 99.0
    assert events.percentile(values, 0.50) == 50.0
    assert events.percentile([7.0], 0.99) == 7.0
