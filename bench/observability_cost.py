"""Per-request cost of the metrics and the access line: before #26 and now, one process.

    .venv/bin/python -m bench.observability_cost [--rev 3fdee42] [--blocks 300]

Loads REV's service/metrics.py and service/logs.py (custom collectors; access
lines batched outside `logging`) from git beside this tree's (prometheus_client's
own metrics; access records through `logging`), then times blocks of 500 calls of
each, in alternating order, the JSON lines going to /dev/null (the formatting and
the write are in the block). Prints the fastest and the median block per call:
under load, noise only ever adds time. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
TEMPLATE = "/v1/conversations/{conversation_id:int(min=1, max=9223372036854775807)}"
ROUTE = "/v1/conversations/{conversation_id}"
REQUEST_ID = "0123456789abcdef0123456789abcdef"


def _load(rev: str, path: str, name: str) -> types.ModuleType:
    """A module of another commit, loaded from git under a name of its own."""
    source = subprocess.run(
        ["git", "show", f"{rev}:{path}"],
        cwd=HERE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102 - our own history
    return module


def _cases(rev: str) -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    """name -> (one call, what ends a block: the flush of batched lines)."""
    from service import logs, metrics

    old_logs = _load(rev, "service/logs.py", "bench_old_logs")
    old_metrics = _load(rev, "service/metrics.py", "bench_old_metrics")
    devnull = open(os.devnull, "w")  # noqa: SIM115 - for the process's life
    old_m, new_m = old_metrics.Metrics(), metrics.Metrics()
    old_access = old_logs.AccessLog()
    old_access.attach(logging.StreamHandler(devnull))
    logs.configure("INFO", stream=devnull)
    [handler] = [
        h for h in logging.getLogger().handlers if isinstance(h, logs.JsonLinesHandler)
    ]

    def nothing() -> None:
        return None

    return {
        f"metrics {rev}": (
            lambda: old_m.observe_request(TEMPLATE, "GET", 200, 0.003),
            nothing,
        ),
        "metrics now": (
            lambda: new_m.observe_request(TEMPLATE, "GET", 200, 0.003),
            nothing,
        ),
        f"access line {rev}": (
            lambda: old_access.write(
                "GET", "/v1/conversations/7", 200, 0.003, REQUEST_ID
            ),
            old_access.flush,
        ),
        "access line now": (
            lambda: logs.log_access(
                "GET", "/v1/conversations/7", ROUTE, 200, 0.003, REQUEST_ID
            ),
            handler.flush,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """Time each case in alternating blocks and print us per call."""
    parser = argparse.ArgumentParser(prog="python -m bench.observability_cost")
    parser.add_argument("--rev", default="3fdee42", help="the commit before #26")
    parser.add_argument("--blocks", type=int, default=300, help="blocks per case")
    args = parser.parse_args(argv)
    cases = _cases(args.rev)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for block in range(args.blocks + 1):
        for name in order if block % 2 else order[::-1]:
            call, finish = cases[name]
            started = time.perf_counter()
            for _ in range(500):
                call()
            finish()
            if block:  # the first round warms up
                samples[name].append((time.perf_counter() - started) / 500)
    for name, times in samples.items():
        print(
            f"{name:24} fastest {min(times) * 1e6:6.2f} us"
            f"  median {statistics.median(times) * 1e6:6.2f} us"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
