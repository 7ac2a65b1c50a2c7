"""Start-up and migration timings, each against its bare counterpart."""

from __future__ import annotations

import sqlite3
import statistics
import sys
from pathlib import Path
from typing import Any

from bench import data, procs
from bench.baseline_schema import PRAGMAS

# Runs the same SQL as the migration folder in one executescript call, in a
# fresh interpreter like `python -m service migrate`; prints its own time too.
_EXECUTESCRIPT = """
import sqlite3, sys, time
t0 = time.perf_counter()
sql = open(sys.argv[2]).read()
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
for pragma in sys.argv[3:]:
    conn.execute(pragma)
conn.executescript("BEGIN;\\n" + sql + "\\nCOMMIT;")
conn.close()
print(time.perf_counter() - t0)
"""


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _time_to_ready(
    kind: str, db: Path, tmp: Path, threads: int, log_level: str, core: int | None
) -> float:
    log = tmp / f"startup-{kind}.log"
    server = (
        procs.start_service(db, threads, log_level, log, core)
        if kind == "service"
        else procs.start_baseline(db, threads, log, core)
    )
    try:
        return server.wait_ready("/readyz")
    finally:
        server.stop()


def measure_startup(
    tmp: Path,
    reps: int,
    threads: int,
    log_level: str,
    core: int | None,
    with_service: bool = True,
) -> dict[str, Any]:
    """Seconds from process start to /readyz 200, fresh and migrated files."""
    kinds = ["service", "baseline"] if with_service else ["baseline"]
    samples: dict[str, list[float]] = {}
    for rep in range(reps):
        for kind in kinds:
            fresh = tmp / f"startup-{kind}-{rep}.sqlite3"
            samples.setdefault(f"{kind} fresh db", []).append(
                _time_to_ready(kind, fresh, tmp, threads, log_level, core)
            )
            # The file the fresh start just migrated is now a migrated one.
            samples.setdefault(f"{kind} migrated db", []).append(
                _time_to_ready(kind, fresh, tmp, threads, log_level, core)
            )
    # What any Python process pays before our code runs, for scale.
    for _ in range(reps):
        seconds, _result = procs.run_cli([sys.executable, "-c", "pass"], {}, core)
        samples.setdefault("python -c pass", []).append(seconds)
    return {
        "median_s": {k: _median(v) for k, v in samples.items()},
        "samples_s": samples,
    }


def measure_migrations(
    tmp: Path, count: int, reps: int, core: int | None
) -> dict[str, Any]:
    """Time `python -m service migrate` on count files against executescript."""
    many, one = tmp / f"migrations-{count}", tmp / "migrations-1"
    scripts = data.make_migrations(many, count)
    data.make_migrations(one, 1)
    sql_file = tmp / f"migrations-{count}.sql"
    sql_file.write_text("\n".join(scripts))
    samples: dict[str, list[float]] = {}
    inner: list[float] = []
    for rep in range(reps):
        for label, folder in (
            (f"service migrate {count} files", many),
            ("service migrate 1 file", one),
        ):
            db = tmp / f"mig-{folder.name}-{rep}.sqlite3"
            env = {
                "SERVICE_DATABASE_PATH": str(db),
                "SERVICE_MIGRATIONS_PATH": str(folder),
                "SERVICE_LOG_LEVEL": "WARNING",
            }
            seconds, result = procs.run_cli(
                procs.service_cmd("migrate"), env, core, timeout=600
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"{label} failed ({result.returncode}):\n"
                    + result.stderr.decode(errors="replace")[-2000:]
                )
            samples.setdefault(label, []).append(seconds)
        tables = _count_tables(tmp / f"mig-{many.name}-{rep}.sqlite3")
        if tables < count:
            raise RuntimeError(f"service migrate left {tables} tables, want {count}+")
        db = tmp / f"mig-executescript-{rep}.sqlite3"
        seconds, result = procs.run_cli(
            [sys.executable, "-c", _EXECUTESCRIPT, str(db), str(sql_file), *PRAGMAS],
            {},
            core,
        )
        if result.returncode != 0:
            raise RuntimeError(result.stderr.decode(errors="replace"))
        samples.setdefault(f"executescript {count} files (process)", []).append(seconds)
        inner.append(float(result.stdout.split()[-1]))
    samples[f"executescript {count} files (in-process)"] = inner
    medians = {k: _median(v) for k, v in samples.items()}
    svc = medians[f"service migrate {count} files"]
    svc_one = medians["service migrate 1 file"]
    return {
        "files": count,
        "median_s": medians,
        "samples_s": samples,
        "service_per_file_ms": (svc - svc_one) * 1000 / (count - 1),
        "ratio_vs_executescript_process": svc
        / medians[f"executescript {count} files (process)"],
    }


def _count_tables(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            " AND name GLOB 't[0-9]*'"
        ).fetchone()
    finally:
        conn.close()
    return int(row[0]) + 1  # + app_metadata from 0001
