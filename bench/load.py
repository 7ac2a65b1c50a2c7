"""Interleaved wrk rounds against the service, the baseline and obvious Pony."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import data, probes, procs, proctree, summary, wrk
from bench import postgres as pg
from bench.baseline import init_db

# Every stack --stacks can name, in the table's order, with the role it
# plays in the ratios (see summary.summarize). --engine postgres adds
# pg.STACK (the service on PostgreSQL, role "postgres") after the service.
STACKS = ("service", "baseline", "obvious")
ENGINES = ("sqlite", "postgres")


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
    stacks: tuple[str, ...] = STACKS
    engine: str = "sqlite"
    # Also the service with this many worker processes (0: not run).
    workers: int = 0

    @property
    def workers_stack(self) -> str:
        """The name of the service with --workers processes."""
        return f"service-w{self.workers}"

    def all_stacks(self) -> tuple[str, ...]:
        """The stacks to run: --stacks, the service with --workers processes and
        the service on PostgreSQL if asked for, both after the service."""
        extra: tuple[str, ...] = ()
        if self.workers:
            extra += (self.workers_stack,)
        if self.engine == "postgres":
            extra += (pg.STACK,)
        at = self.stacks.index("service") + 1 if "service" in self.stacks else 0
        return (*self.stacks[:at], *extra, *self.stacks[at:])


@dataclass
class Stack:
    """One server under test and everything measured on it."""

    name: str
    role: str
    server: procs.Server
    db: Path | str  # an SQLite file, or the URL of a PostgreSQL database
    runs: list[dict[str, Any]] = field(default_factory=list)
    # CPU seconds of a database server outside the server process, if any.
    db_cpu: Callable[[], float | None] | None = None


def prepare_migrated_db(db: Path, core: int | None = None) -> None:
    """Migrate a fresh database with the service's CLI, then pre-fill it."""
    env = procs.service_env(db, procs.free_port(), 1, "WARNING")
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


def rotation(stacks: list[Stack], round_no: int) -> list[Stack]:
    """Round r starts with stack r-1 (mod n): each leads in turn, so drift on
    a shared machine (other load, growing databases) favours none."""
    k = (round_no - 1) % len(stacks)
    return stacks[k:] + stacks[:k]


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
    # The whole process tree: a supervisor's workers do the work.
    cpu_before = proctree.tree_cpu_seconds(pid)
    db_before = stack.db_cpu() if stack.db_cpu else None
    result = wrk.run(
        wrk_path,
        stack.server.port,
        script,
        connections=connections,
        duration=duration,
        core=client_core,
    )
    cpu_after = proctree.tree_cpu_seconds(pid)
    db_after = stack.db_cpu() if stack.db_cpu else None
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
    db_cpu = (
        db_after - db_before if db_after is not None and db_before is not None else None
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
        "db_cpu_ms_per_req": (
            db_cpu * 1000 / result.requests
            if db_cpu is not None and result.requests
            else None
        ),
        "rss_peak_kb": proctree.tree_status(pid, "VmHWM"),
        "rss_kb": proctree.tree_status(pid, "VmRSS"),
    }
    stack.runs.append(run)
    return run


def start_stacks(
    stacks: list[Stack],
    opts: Options,
    tmp: Path,
    server_core: int | None,
    pg_server: pg.PostgresServer | None = None,
) -> list[str]:
    """Prepare each stack's database, start its server; return notes.

    Each server is appended to stacks as it starts, so the caller stops it
    even when a later one fails. pg_server, running, is where the service
    on PostgreSQL (--engine postgres) gets its database.
    """
    notes: list[str] = []
    if opts.baseline_only:
        # Harness self-test: the baseline plays the service and itself.
        for name, role in (("baseline-A", "service"), ("baseline-B", "baseline")):
            db = tmp / f"{name}.sqlite3"
            prepare_baseline_db(db)
            server = procs.start_bench_server(
                name,
                "bench.baseline",
                db,
                opts.threads,
                tmp / f"{name}.log",
                server_core,
            )
            stacks.append(Stack(name, role, server, db))
        return notes
    dbs = {name: tmp / f"{name}.sqlite3" for name in opts.stacks}
    for name, db in dbs.items():
        if name == "baseline":
            prepare_baseline_db(db)
        else:  # the service and obvious Pony share the migrated schema
            prepare_migrated_db(db, server_core)
    if "baseline" in dbs:
        others = {n: db for n, db in dbs.items() if n != "baseline"}
        notes += probes.check_shapes(dbs["baseline"], others) + data.pragma_drift()
    for name in opts.all_stacks():
        log = tmp / f"{name}.log"
        if name == pg.STACK:
            if pg_server is None:
                raise RuntimeError(f"{pg.STACK} needs a PostgreSQL server")
            url = pg.prepare(pg_server, server_core)
            notes.append(pg.describe(url, server_core))
            server = procs.start_service(
                url, opts.threads, opts.log_level, log, server_core, name=name
            )
            db_cpu = functools.partial(pg.server_cpu_seconds, pg_server)
            stacks.append(Stack(name, "postgres", server, url, db_cpu=db_cpu))
            continue
        if name == opts.workers_stack and opts.workers:
            # Unpinned: the workers share every core, wrk included.
            db = tmp / f"{name}.sqlite3"
            prepare_migrated_db(db, server_core)
            server = procs.start_service(
                db, opts.threads, opts.log_level, log, None, name, opts.workers
            )
            stacks.append(Stack(name, "workers", server, db))
            continue
        db = dbs[name]
        if name == "service":
            server = procs.start_service(
                db, opts.threads, opts.log_level, log, server_core
            )
        else:
            server = procs.start_bench_server(
                name, f"bench.{name}", db, opts.threads, log, server_core
            )
        stacks.append(Stack(name, name, server, db))
    return notes


def warm_up(
    stacks: list[Stack],
    opts: Options,
    scripts: dict[str, Path],
    wrk_path: str,
    client_core: int | None,
) -> None:
    """Run every workload once against every stack, unmeasured."""
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


def run_load(
    opts: Options,
    tmp: Path,
    wrk_path: str,
    server_core: int | None,
    client_core: int | None,
    progress: Any = print,
) -> dict[str, Any]:
    """Start the stacks, pre-fill, warm up, run the rounds, stop them all."""
    scripts = wrk.write_scripts(tmp)
    stacks: list[Stack] = []
    notes: list[str] = []
    pg_server = None
    try:
        if pg.STACK in opts.all_stacks():
            pg_server = pg.start_server(server_core)
        notes = start_stacks(stacks, opts, tmp, server_core, pg_server)
        for stack in stacks:
            stack.server.wait_ready()
        shapes = {s.name: probes.check_api(s.name, s.server) for s in stacks}
        notes += probes.compare_api(shapes)
        if opts.warmup > 0:
            progress(f"warm-up: {opts.warmup} s per workload and stack")
            warm_up(stacks, opts, scripts, wrk_path, client_core)
        started = time.perf_counter()
        for round_no in range(1, opts.rounds + 1):
            order = rotation(stacks, round_no)
            for workload in opts.workloads:
                for conns in opts.connections:
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
        if pg_server is not None:
            pg_server.stop()
    for name, code in exit_codes.items():
        if code not in (0, None):
            notes.append(f"{name} exited with {code} on SIGTERM (expected 0)")
    runs = [r for s in stacks for r in s.runs]
    for stack in stacks:
        errors = sum(r["errors"] for r in stack.runs)
        if errors and stack.role != "service":
            notes.append(f"{stack.name} answered {errors} errors (see its log)")
    roles = {s.name: s.role for s in stacks}
    return {
        "stacks": [s.name for s in stacks],
        "roles": roles,
        "rows": summary.summarize(runs, roles, opts.workloads, opts.connections),
        "runs": runs,
        "api": shapes,
        "notes": notes,
        "exit_codes": exit_codes,
        "elapsed_s": elapsed,
    }
