"""The service's per-request time against another commit's, in one run.

`python -m bench versus REV` extracts REV (git archive) into a temporary
folder and runs `python -m bench micro --stacks service` there and in this
tree, in turns (one round each, the order alternating), with the same
interpreter and environment: machine noise falls on both alike. It prints
each workload's median microseconds per request for REV and for this tree,
and the difference. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def _extract(rev: str, into: Path) -> Path:
    archive = into / "rev.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", rev], cwd=HERE, stdout=out, check=True)
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def _round(tree: Path, args: argparse.Namespace, out: Path) -> dict[str, float]:
    """One micro round in tree: workload -> seconds per request."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "bench", "micro", "--stacks", "service"]
    subprocess.run(
        [
            *command,
            *("--rounds", "1", "--requests", str(args.requests)),
            *("--workloads", args.workloads, "--log-level", args.log_level),
            *("--json", str(out)),
        ],
        cwd=tree,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    raw = json.loads(out.read_text())["seconds_per_request"]
    return {workload: stacks["service"][0] for workload, stacks in raw.items()}


def main(argv: list[str] | None = None) -> int:
    """Compare this tree's per-request time with REV's."""
    p = argparse.ArgumentParser(prog="python -m bench versus")
    p.add_argument("rev", help="the commit to compare with (e.g. main)")
    p.add_argument("--rounds", type=int, default=5, help="rounds per tree")
    p.add_argument("--requests", type=int, default=2000, help="requests per round")
    p.add_argument("--workloads", default="healthz,get,put")
    p.add_argument("--log-level", default="INFO", help="SERVICE_LOG_LEVEL of both")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-versus-") as tmp:
        trees = {args.rev: _extract(args.rev, Path(tmp)), "this tree": HERE}
        samples: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
        names = list(trees)
        for n in range(args.rounds):
            for name in names if n % 2 == 0 else names[::-1]:
                got = _round(trees[name], args, Path(tmp) / "round.json")
                for workload, seconds in got.items():
                    samples[name].setdefault(workload, []).append(seconds)
    print(
        f"in-process service, {args.rounds} rounds x {args.requests} requests per tree, "
        f"log level {args.log_level}; us/request, median and (fastest round: noise "
        "only ever adds time)"
    )
    old, new = samples[args.rev], samples["this tree"]
    for workload in old:
        for how, pick in (("median", statistics.median), ("fastest", min)):
            before, after = pick(old[workload]) * 1e6, pick(new[workload]) * 1e6
            print(
                f"  {workload:8} {how:8} {args.rev}: {before:7.1f}  this tree: "
                f"{after:7.1f}  difference: {after - before:+6.1f} us "
                f"({after / before - 1:+.0%})"
            )
    return 0
