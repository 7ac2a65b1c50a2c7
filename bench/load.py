"""Interleaved wrk rounds against the service and the baseline."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import data, procs, wrk
from bench.baseline import init_db

# The targets: service/baseline req/s at least this, p99 at most that.
MIN_RPS_RATIO = 0.90
MAX_P99_RATIO = 1.5


@dataclass
class Options:
    """What to run; the CLI fills it."""

    duration: int = 10
    warmup: int = 3
    rounds: int = 3
    connections: tuple[int, ...] = (16, 64)
    workloads: tuple[str, ...] = wrk.WORKLOADS
    threads: int = 8
    log_level: str = "INFO"
    baseline_only: bool = False


@dataclass
class Stack:
    """One server under test and everything measured on it."""

    name: str
    server: procs.Server
    db: Path
    runs: list[dict[str, Any]] = field(default_factory=list)


def prepare_service_db(db: Path, opts: Options, core: int | None) -> None:
    """Migrate a fresh database with the service's CLI, then pre-fill it."""
    env = procs.service_env(db, procs.free_port(), opts.threads, opts.log_level)
    _, result = procs.run_cli(procs.service_cmd("migrate"), env, core, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(
            "python -m service migrate failed "
            f"({result.returncode}):\n{result.stderr.decode(errors='replace')}"
        )
    data.prefill(db)
    data.prefill_messaging(db)


def prepare_baseline_db(db: Path) -> None:
    """Create the baseline's table, then pre-fill it."""
    init_db(db)
    data.prefill(db)
    data.prefill_messaging(db)


def check_shapes(service_db: Path, baseline_db: Path) -> list[str]:
    """Compare app_metadata's columns in both databases; return differences."""
    notes = []
    for table in ("app_metadata", "messages", "memberships", "api_tokens"):
        a = data.table_shape(service_db, table)
        b = data.table_shape(baseline_db, table)
        if a != b:
            notes.append(f"{table} differs: service {a} vs baseline {b}")
    return notes


def check_api(stack: Stack) -> dict[str, Any]:
    """Probe the routes the workloads hit; raise if one answers wrongly."""
    port = stack.server.port
    shapes: dict[str, Any] = {}
    status, body = procs.http_get(port, "/healthz")
    if status != 200 or json.loads(body).get("status") != "ok":
        raise RuntimeError(f"{stack.name}: GET /healthz -> {status} {body!r}")
    status, body = procs.http_get(port, "/v1/metadata/" + data.key_name(0))
    if status != 200:
        raise RuntimeError(f"{stack.name}: GET pre-filled key -> {status} {body!r}")
    shapes["get"] = sorted(json.loads(body))
    status, body = procs.http_request(
        port, "PUT", "/v1/metadata/" + data.key_name(1), b'{"value":"probe"}'
    )
    if status != 200:
        raise RuntimeError(f"{stack.name}: PUT pre-filled key -> {status} {body!r}")
    shapes["put"] = sorted(json.loads(body))
    shapes["updated_at"] = json.loads(body).get("updated_at")
    status, _ = procs.http_get(port, "/v1/metadata/no-such-key")
    if status != 404:
        raise RuntimeError(f"{stack.name}: GET missing key -> {status}, not 404")
    messages = f"/v1/conversations/{data.CONVERSATION_ID}/messages"
    auth = {"Authorization": f"Bearer {data.BENCH_TOKEN}"}
    status, body = procs.http_request(
        port, "POST", messages, b'{"body":"probe"}', headers=auth
    )
    if status != 201:
        raise RuntimeError(f"{stack.name}: POST message -> {status} {body!r}")
    shapes["post"] = sorted(json.loads(body))
    status, body = procs.http_request(
        port, "GET", messages + "?limit=50", None, headers=auth
    )
    page = json.loads(body) if status == 200 else {}
    if status != 200 or len(page.get("items", [])) != 50:
        raise RuntimeError(f"{stack.name}: GET latest 50 -> {status} {body[:200]!r}")
    shapes["latest"] = sorted(page) + sorted(page["items"][0])
    return shapes


def measure(
    stack: Stack,
    wrk_path: str,
    script: Path,
    *,
    workload: str,
    connections: int,
    duration: int,
    client_core: int | None,
    round_no: int,
) -> dict[str, Any]:
    """Run wrk once against stack and record the result with server stats."""
    pid = stack.server.pid
    cpu_before = procs.cpu_seconds(pid)
    result = wrk.run(
        wrk_path,
        stack.server.port,
        script,
        connections=connections,
        duration=duration,
        core=client_core,
    )
    cpu_after = procs.cpu_seconds(pid)
    if stack.server.proc.poll() is not None:
        raise RuntimeError(
            f"{stack.name} died during {workload}/{connections}:\n"
            + stack.server.log_tail()
        )
    cpu = (
        cpu_after - cpu_before
        if cpu_after is not None and cpu_before is not None
        else None
    )
    run = {
        "stack": stack.name,
        "workload": workload,
        "connections": connections,
        "round": round_no,
        **asdict(result),
        "server_cpu_s": cpu,
        "server_cpu_ms_per_req": (
            cpu * 1000 / result.requests
            if cpu is not None and result.requests
            else None
        ),
        "rss_peak_kb": procs.proc_status(pid, "VmHWM"),
        "rss_kb": procs.proc_status(pid, "VmRSS"),
    }
    stack.runs.append(run)
    return run


def summarize(stacks: list[Stack], opts: Options) -> list[dict[str, Any]]:
    """Reduce the runs to one row per workload, connections and stack."""
    rows = []
    for workload in opts.workloads:
        for conns in opts.connections:
            by_stack = {}
            for stack in stacks:
                runs = [
                    r
                    for r in stack.runs
                    if r["workload"] == workload and r["connections"] == conns
                ]
                if not runs:
                    continue
                cpus = [
                    r["server_cpu_ms_per_req"]
                    for r in runs
                    if r["server_cpu_ms_per_req"] is not None
                ]
                row = {
                    "workload": workload,
                    "connections": conns,
                    "stack": stack.name,
                    "rounds": len(runs),
                    "rps": statistics.median(r["rps"] for r in runs),
                    "rps_min": min(r["rps"] for r in runs),
                    "rps_max": max(r["rps"] for r in runs),
                    "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                    "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                    "errors": sum(r["errors"] for r in runs),
                    "rss_peak_kb": max(r["rss_peak_kb"] or 0 for r in runs),
                    "cpu_ms_per_req": statistics.median(cpus) if cpus else None,
                }
                by_stack[stack.name] = row
                rows.append(row)
            svc, base = by_stack.get(stacks[0].name), by_stack.get(stacks[1].name)
            if svc and base:
                rps_ratio = svc["rps"] / base["rps"] if base["rps"] else 0.0
                p99_ratio = svc["p99_ms"] / base["p99_ms"] if base["p99_ms"] else 0.0
                misses = []
                if rps_ratio < MIN_RPS_RATIO:
                    misses.append(f"req/s<{MIN_RPS_RATIO:.0%}")
                if p99_ratio > MAX_P99_RATIO:
                    misses.append(f"p99>{MAX_P99_RATIO}x")
                if svc["errors"]:
                    misses.append("errors")
                cpu_ratio = (
                    svc["cpu_ms_per_req"] / base["cpu_ms_per_req"]
                    if svc["cpu_ms_per_req"] and base["cpu_ms_per_req"]
                    else None
                )
                svc.update(
                    cpu_ratio=cpu_ratio,
                    rps_ratio=rps_ratio,
                    p99_ratio=p99_ratio,
                    misses=misses,
                    verdict="MISS " + ",".join(misses) if misses else "ok",
                )
    return rows


def run_load(
    opts: Options,
    tmp: Path,
    wrk_path: str,
    server_core: int | None,
    client_core: int | None,
    progress: Any = print,
) -> dict[str, Any]:
    """Start both stacks, pre-fill, warm up, run the rounds, stop both."""
    scripts = wrk.write_scripts(tmp)
    notes: list[str] = []
    stacks: list[Stack] = []
    try:
        if opts.baseline_only:
            # Harness self-test: the baseline plays both parts.
            for name in ("baseline-A", "baseline-B"):
                db = tmp / f"{name}.sqlite3"
                prepare_baseline_db(db)
                server = procs.start_baseline(
                    db, opts.threads, tmp / f"{name}.log", server_core
                )
                stacks.append(Stack(name, server, db))
        else:
            svc_db, base_db = tmp / "service.sqlite3", tmp / "baseline.sqlite3"
            prepare_service_db(svc_db, opts, server_core)
            prepare_baseline_db(base_db)
            notes += check_shapes(svc_db, base_db) + data.pragma_drift()
            stacks.append(
                Stack(
                    "service",
                    procs.start_service(
                        svc_db,
                        opts.threads,
                        opts.log_level,
                        tmp / "service.log",
                        server_core,
                    ),
                    svc_db,
                )
            )
            stacks.append(
                Stack(
                    "baseline",
                    procs.start_baseline(
                        base_db, opts.threads, tmp / "baseline.log", server_core
                    ),
                    base_db,
                )
            )
        for stack in stacks:
            stack.server.wait_ready()
        shapes = {s.name: check_api(s) for s in stacks}
        a, b = (shapes[s.name] for s in stacks)
        if (a["get"], a["put"]) != (b["get"], b["put"]):
            notes.append(f"JSON shapes differ: {a} vs {b}")

        if opts.warmup > 0:
            progress(f"warm-up: {opts.warmup} s per workload and stack")
            for workload in opts.workloads:
                for stack in stacks:
                    wrk.run(
                        wrk_path,
                        stack.server.port,
                        scripts[workload],
                        connections=max(opts.connections),
                        duration=opts.warmup,
                        core=client_core,
                    )

        started = time.perf_counter()
        for round_no in range(1, opts.rounds + 1):
            for workload in opts.workloads:
                for conns in opts.connections:
                    # A B, then B A: drift on a shared machine (other load,
                    # a growing database) does not always favour one stack.
                    order = stacks if round_no % 2 else stacks[::-1]
                    for stack in order:
                        run = measure(
                            stack,
                            wrk_path,
                            scripts[workload],
                            workload=workload,
                            connections=conns,
                            duration=opts.duration,
                            client_core=client_core,
                            round_no=round_no,
                        )
                        progress(
                            f"round {round_no}/{opts.rounds} {workload:7} c={conns:<3}"
                            f" {stack.name:10} {run['rps']:9.0f} req/s"
                            f" p99 {run['p99_ms']:7.2f} ms errors {run['errors']}"
                        )
        elapsed = time.perf_counter() - started
    finally:
        exit_codes = {s.name: s.server.stop() for s in stacks}
    for name, code in exit_codes.items():
        if code not in (0, None):
            notes.append(f"{name} exited with {code} on SIGTERM (expected 0)")
    return {
        "stacks": [s.name for s in stacks],
        "rows": summarize(stacks, opts),
        "runs": [r for s in stacks for r in s.runs],
        "api": shapes,
        "notes": notes,
        "exit_codes": exit_codes,
        "elapsed_s": elapsed,
    }
