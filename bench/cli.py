"""Command line of the benchmark: python -m bench [micro] [options]."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import load, procs, report, startup, summary, wrk
from bench.data import REPO, first_migration


def _int_list(text: str) -> tuple[int, ...]:
    values = tuple(int(v) for v in text.split(",") if v.strip())
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("want positive integers, e.g. 16,64")
    return values


def _workloads(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = sorted(set(names) - set(wrk.WORKLOADS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload(s) {unknown}; choose from {','.join(wrk.WORKLOADS)}"
        )
    return names


def _stacks(text: str) -> tuple[str, ...]:
    names = {v.strip() for v in text.split(",") if v.strip()}
    unknown = sorted(names - set(load.STACKS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown stack(s) {unknown}; choose from {','.join(load.STACKS)}"
        )
    return tuple(s for s in load.STACKS if s in names)  # the table's order


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the load benchmark (the default command)."""
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Compare the service with a bare Falcon + waitress + sqlite3 baseline "
            "and with the same routes in obvious Pony, under wrk. "
            "`python -m bench micro` runs the in-process comparison."
        ),
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="short smoke run: 1 s runs, 2 rounds, 1 start-up rep",
    )
    p.add_argument("--duration", type=int, help="seconds per wrk run (default 10)")
    p.add_argument(
        "--warmup",
        type=int,
        help="seconds of warm-up per workload and stack (default 3)",
    )
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    p.add_argument(
        "--connections",
        type=_int_list,
        default=(16, 64),
        help="comma-separated connection counts (default 16,64)",
    )
    p.add_argument(
        "--workloads",
        type=_workloads,
        default=wrk.WORKLOADS,
        help=f"comma-separated, from {','.join(wrk.WORKLOADS)}",
    )
    p.add_argument(
        "--stacks",
        type=_stacks,
        default=load.STACKS,
        help=f"comma-separated, from {','.join(load.STACKS)} (default all)",
    )
    p.add_argument(
        "--engine",
        choices=load.ENGINES,
        default="sqlite",
        help="postgres: also run the service on a PostgreSQL server of its own "
        "(stack service-pg, no targets) beside the service on SQLite; the "
        "baseline and obvious Pony stay on SQLite (default sqlite)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="also run the service with this many worker processes (SERVICE_WORKERS,"
        " unpinned: the workers and wrk share every core) beside the one-process"
        " service, with issue 24's targets (default 0: not run)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=8,
        help="server worker threads, every stack (default 8)",
    )
    p.add_argument(
        "--log-level",
        default="INFO",
        help="SERVICE_LOG_LEVEL of the service (default INFO)",
    )
    p.add_argument(
        "--migrations",
        type=int,
        default=500,
        help="migration files for the migrate timing (default 500)",
    )
    p.add_argument(
        "--startup-reps",
        type=int,
        help="repetitions of start-up/migration timings (default 3)",
    )
    p.add_argument("--no-load", action="store_true", help="skip the wrk runs")
    p.add_argument(
        "--no-startup", action="store_true", help="skip start-up and migration timings"
    )
    p.add_argument(
        "--baseline-only",
        action="store_true",
        help="harness self-test: run the baseline as both stacks",
    )
    p.add_argument(
        "--json", type=Path, metavar="PATH", help="write every raw number to PATH"
    )
    p.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed"
    )
    p.add_argument(
        "--keep-tmp",
        action="store_true",
        help="keep the temp folder (databases, server logs)",
    )
    return p


def _resolve(args: argparse.Namespace) -> load.Options:
    quick = args.quick
    return load.Options(
        duration=args.duration or (1 if quick else 10),
        warmup=args.warmup if args.warmup is not None else (1 if quick else 3),
        rounds=args.rounds or (2 if quick else 3),
        connections=args.connections,
        workloads=args.workloads,
        threads=args.threads,
        log_level=args.log_level,
        baseline_only=args.baseline_only,
        stacks=args.stacks,
        engine=args.engine,
        workers=args.workers,
    )


def service_available() -> bool:
    """Tell whether `python -m service` exists in this tree."""
    return (REPO / "service" / "__main__.py").exists()


def run(argv: list[str]) -> int:
    """Run the load, start-up and migration comparisons; print the tables."""
    args = build_parser().parse_args(argv)
    opts = _resolve(args)
    reps = args.startup_reps or (1 if args.quick else 3)
    if opts.baseline_only and opts.engine == "postgres":
        print(
            "--engine postgres measures the service: not with --baseline-only",
            file=sys.stderr,
        )
        return 2
    needs_service = {"service", "obvious"} & set(
        opts.stacks
    ) or opts.engine == "postgres"
    if not opts.baseline_only and needs_service and not service_available():
        print(
            "python -m service is not there yet; use --baseline-only to test the"
            " harness",
            file=sys.stderr,
        )
        return 2
    server_core, client_core = procs.cores()
    results: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "options": {**vars(opts), "startup_reps": reps, "migrations": args.migrations},
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "server_core": server_core,
            "client_core": client_core,
        },
    }
    load_avg = os.getloadavg()[0]
    results["machine"]["loadavg_1min_at_start"] = load_avg
    if load_avg > 0.5:
        print(
            f"note: load average {load_avg:.2f} before starting: other work on this"
            " machine makes the numbers noisy"
        )
    if server_core is None:
        print("note: fewer than 2 usable cores or no taskset; nothing is pinned")
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    exit_code = 0
    try:
        if not args.no_load:
            wrk_path = wrk.ensure_wrk()
            results["load"] = load.run_load(
                opts,
                tmp,
                wrk_path,
                server_core,
                client_core,
                progress=lambda line: print(line, flush=True),
            )
            rows = results["load"]["rows"]
            print()
            print(
                f"median of {opts.rounds} interleaved rounds, {opts.duration} s each,"
                f" {opts.threads} server threads; {summary.targets_line()}"
            )
            print(report.load_table(rows))
            beside = report.engine_table(rows)
            if beside:
                print()
                print(
                    "the service on PostgreSQL beside the service on SQLite (no"
                    " targets for PostgreSQL; cpu: ms per request of the service"
                    " process, and of the PostgreSQL server pinned to its core)"
                )
                print(beside)
            side = report.workers_table(rows)
            if side:
                print()
                print(
                    f"the service with {opts.workers} worker processes beside one"
                    f" (targets: {summary.workers_targets_line()}; cpu: ms per"
                    " request of every process of the server)"
                )
                print(side)
            for note in results["load"]["notes"]:
                print("note:", note)
            missed = report.misses(rows)
            if missed:
                print(f"targets missed ({len(missed)}):")
                for line in missed:
                    print("  " + line)
                if args.strict:
                    exit_code = 1
            elif not any("verdict" in r for r in rows):
                print("no service and baseline or obvious stack: no target checked")
            else:
                print("all targets met")
        if not args.no_startup:
            with_service = not opts.baseline_only and "service" in opts.stacks
            results["startup"] = startup.measure_startup(
                tmp, reps, opts.threads, opts.log_level, server_core, with_service
            )
            print()
            print(
                report.timing_table(
                    "start-up: process start to /readyz 200",
                    results["startup"]["median_s"],
                )
            )
            med = results["startup"]["median_s"]
            if with_service:
                print(
                    "service/baseline start-up: fresh db"
                    f" {med['service fresh db'] / med['baseline fresh db']:.1f}x,"
                    " migrated db"
                    f" {med['service migrated db'] / med['baseline migrated db']:.1f}x"
                )
            if with_service and first_migration() is not None:
                results["migrations"] = startup.measure_migrations(
                    tmp, args.migrations, reps, server_core
                )
                mig = results["migrations"]
                print()
                print(
                    report.timing_table(
                        f"migrations: {args.migrations} small files",
                        mig["median_s"],
                    )
                )
                print(
                    f"service per extra file: {mig['service_per_file_ms']:.2f} ms;"
                    " service/executescript (both as processes):"
                    f" {mig['ratio_vs_executescript_process']:.1f}x"
                )
    except (RuntimeError, OSError) as ex:
        print(f"bench failed: {ex}", file=sys.stderr)
        if not args.keep_tmp:
            print("(rerun with --keep-tmp to keep the logs)", file=sys.stderr)
        exit_code = 3
    finally:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
            print(f"raw numbers: {args.json}")
        if args.keep_tmp:
            print(f"temp folder kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return exit_code


def main(argv: list[str] | None = None) -> int:
    """Dispatch: the load benchmark, `micro`, `events` (live delivery) or `versus`."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["micro"]:
        from bench import micro

        return micro.main(argv[1:])
    if argv[:1] == ["events"]:
        from bench import events

        return events.main(argv[1:])
    if argv[:1] == ["search"]:
        from bench import search

        return search.main(argv[1:])
    if argv[:1] == ["versus"]:
        from bench import versus

        return versus.main(argv[1:])
    return run(argv)
