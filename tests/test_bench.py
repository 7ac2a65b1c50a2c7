"""The benchmark harness: its verdicts, its round order, its obvious-Pony stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import baseline, data, load, obvious, summary
from bench.micro import MESSAGES_PATH, call

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
