"""Reduce wrk runs to one row per workload, connections and stack, with targets."""

from __future__ import annotations

import statistics
from typing import Any

# Issue 15's floors: the service's req/s as a ratio to the bare baseline's.
# /healthz touches no database and has no floor; its p99 and errors count.
MIN_RPS_RATIO = {
    "get": 0.80,
    "put": 0.65,
    "mixed": 0.75,
    "post": 0.65,
    "latest": 0.80,
}
# Every workload with a floor: at least this many times the obvious stack.
MIN_VS_OBVIOUS = 1.3
MAX_P99_RATIO = 1.5
# What the issue aims for everywhere; below it is a note, not a miss.
AIM_RPS_RATIO = 0.90


# Issue 24: N worker processes against one, on the same machine (wrk sharing
# its cores): reads at least 1.4x, writes at least 1.1x. healthz and mixed
# have no floor; every workload must answer without errors.
MIN_WORKERS_VS_ONE = {"get": 1.4, "latest": 1.4, "put": 1.1, "post": 1.1}


def _workers_verdict(many: dict[str, Any], one: dict[str, Any]) -> None:
    many["vs_one"] = _ratio(many["rps"], one["rps"])
    many["p99_vs_one"] = _ratio(many["p99_ms"], one["p99_ms"])
    floor = MIN_WORKERS_VS_ONE.get(many["workload"])
    misses = []
    if floor is not None and (many["vs_one"] or 0.0) < floor:
        misses.append(f"<{floor}x one worker")
    if many["errors"]:
        misses.append("errors")
    verdict = "MISS " + ",".join(misses) if misses else "ok"
    if floor is None and not misses:
        verdict = "no floor"
    many.update(misses=misses, verdict=verdict)


def workers_targets_line() -> str:
    """The workers' targets in one line."""
    floors = ", ".join(f"{w} {r:.1f}x" for w, r in MIN_WORKERS_VS_ONE.items())
    return f"req/s over one worker >= {floors}; no errors"


def targets_line() -> str:
    """The targets in one line, for the table's heading."""
    floors = ", ".join(f"{w} {r:.2f}" for w, r in MIN_RPS_RATIO.items())
    return (
        f"targets: req/s ratio >= {floors} (aim {AIM_RPS_RATIO:.2f});"
        f" >= {MIN_VS_OBVIOUS}x obvious; p99 ratio <= {MAX_P99_RATIO}; no errors"
    )


def _row(stack: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    cpus = [
        r["server_cpu_ms_per_req"]
        for r in runs
        if r["server_cpu_ms_per_req"] is not None
    ]
    db_cpus = [
        r["db_cpu_ms_per_req"] for r in runs if r.get("db_cpu_ms_per_req") is not None
    ]
    return {
        "workload": runs[0]["workload"],
        "connections": runs[0]["connections"],
        "stack": stack,
        "rounds": len(runs),
        "rps": statistics.median(r["rps"] for r in runs),
        "rps_min": min(r["rps"] for r in runs),
        "rps_max": max(r["rps"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "rss_peak_kb": max(r["rss_peak_kb"] or 0 for r in runs),
        "cpu_ms_per_req": statistics.median(cpus) if cpus else None,
        # A database server's own processes (PostgreSQL), when there is one.
        "db_cpu_ms_per_req": statistics.median(db_cpus) if db_cpus else None,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _against_baseline(row: dict[str, Any], base: dict[str, Any]) -> None:
    row.update(
        rps_ratio=_ratio(row["rps"], base["rps"]) or 0.0,
        p99_ratio=_ratio(row["p99_ms"], base["p99_ms"]) or 0.0,
        cpu_ratio=_ratio(row["cpu_ms_per_req"], base["cpu_ms_per_req"]),
    )


def _verdict(
    svc: dict[str, Any], base: dict[str, Any] | None, obv: dict[str, Any] | None
) -> None:
    floor = MIN_RPS_RATIO.get(svc["workload"])
    misses = []
    if base is not None:
        if floor is not None and svc["rps_ratio"] < floor:
            misses.append(f"req/s<{floor:.2f}")
        if svc["p99_ratio"] > MAX_P99_RATIO:
            misses.append(f"p99>{MAX_P99_RATIO}x")
    if obv is not None and floor is not None:
        vs_obvious = svc.get("vs_obvious")
        if vs_obvious is None or vs_obvious < MIN_VS_OBVIOUS:
            misses.append(f"<{MIN_VS_OBVIOUS}x obvious")
    if svc["errors"]:
        misses.append("errors")
    below_aim = (
        base is not None and floor is not None and svc["rps_ratio"] < AIM_RPS_RATIO
    )
    if misses:
        verdict = "MISS " + ",".join(misses)
    else:
        verdict = "ok, below aim" if below_aim else "ok"
    svc.update(misses=misses, below_aim=below_aim, verdict=verdict)


def summarize(
    runs: list[dict[str, Any]],
    roles: dict[str, str],
    workloads: tuple[str, ...],
    connections: tuple[int, ...],
) -> list[dict[str, Any]]:
    """One row per workload, connection count and stack, in roles' order.

    roles maps each stack's name to "service", "baseline", "obvious" or
    "postgres" (the service on PostgreSQL). The service's row carries the
    verdict; the service's, the obvious and the postgres stack's rows carry
    their ratios to the baseline; the service's row also its req/s over
    the obvious stack's (vs_obvious). The postgres row has no target: its
    verdict says so, and vs_sqlite and p99_vs_sqlite put it beside the
    service on SQLite.
    """
    rows = []
    for workload in workloads:
        for conns in connections:
            by_role: dict[str, dict[str, Any]] = {}
            for name, role in roles.items():
                mine = [
                    r
                    for r in runs
                    if r["stack"] == name
                    and r["workload"] == workload
                    and r["connections"] == conns
                ]
                if mine:
                    by_role[role] = _row(name, mine)
                    rows.append(by_role[role])
            svc = by_role.get("service")
            base = by_role.get("baseline")
            obv = by_role.get("obvious")
            on_pg = by_role.get("postgres")
            if base is not None:
                for row in (svc, obv, on_pg):
                    if row is not None:
                        _against_baseline(row, base)
            if on_pg is not None:
                on_pg["verdict"] = "no target"
                if svc is not None:
                    on_pg["vs_sqlite"] = _ratio(on_pg["rps"], svc["rps"])
                    on_pg["p99_vs_sqlite"] = _ratio(on_pg["p99_ms"], svc["p99_ms"])
            many = by_role.get("workers")
            if many is not None and svc is not None:
                _workers_verdict(many, svc)
            if svc is not None:
                if obv is not None:
                    svc["vs_obvious"] = _ratio(svc["rps"], obv["rps"])
                if base is not None or obv is not None:
                    _verdict(svc, base, obv)
    return rows
