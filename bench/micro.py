"""In-process micro-benchmark: middleware + one request, as direct WSGI calls.

No sockets, no waitress, no wrk: what is left is the per-request cost of
each app (routing, middleware, the ORM or sqlite3, JSON). The service, the
baseline and obvious Pony run in this process, each on its own pre-filled
database, in rotating blocks; the ratios are what to read, since absolute
times depend on the machine and whatever else runs on it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench import baseline, data, load, obvious

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


AUTH = "Bearer " + data.BENCH_TOKEN
MESSAGES_PATH = f"/v1/conversations/{data.CONVERSATION_ID}/messages"


def environ(method: str, path: str, body: bytes = b"") -> dict[str, Any]:
    """Return a minimal WSGI environ for one request."""
    path, _, query = path.partition("?")
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8080",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if body:
        env["CONTENT_TYPE"] = "application/json"
        env["CONTENT_LENGTH"] = str(len(body))
    if path.startswith("/v1/conversations/"):
        env["HTTP_AUTHORIZATION"] = AUTH
    return env


def call(app: Wsgi, method: str, path: str, body: bytes = b"") -> tuple[str, bytes]:
    """Run one request through app; return (status line, body)."""
    status: list[str] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> None:
        status.append(line)

    result = app(environ(method, path, body), start_response)
    try:
        out = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return status[0], out


def _requests(workload: str, n: int, seed: int) -> list[tuple[str, str, bytes]]:
    rng = random.Random(seed)
    if workload == "healthz":
        return [("GET", "/healthz", b"")] * n
    if workload == "latest":
        return [("GET", MESSAGES_PATH + "?limit=50", b"")] * n
    if workload == "post":
        return [
            ("POST", MESSAGES_PATH, b'{"body":"message %d with a few words"}' % i)
            for i in range(n)
        ]
    paths = [
        "/v1/metadata/" + data.key_name(rng.randrange(data.KEYS)) for _ in range(n)
    ]
    if workload == "get":
        return [("GET", p, b"") for p in paths]
    return [("PUT", p, b'{"value":"v%d"}' % i) for i, p in enumerate(paths)]


def time_block(app: Wsgi, requests: list[tuple[str, str, bytes]]) -> float:
    """Seconds per request over the block."""
    started = time.perf_counter()
    for method, path, body in requests:
        call(app, method, path, body)
    return (time.perf_counter() - started) / len(requests)


def service_app(folder: Path, log_level: str) -> Wsgi:
    """Build the service's app on a migrated, pre-filled database."""
    from service import logs
    from service.app import create_app
    from service.config import Settings

    # As `serve` does, but the JSON lines go to /dev/null, not the terminal.
    logs.configure(log_level, stream=open(os.devnull, "w"))  # noqa: SIM115
    db = folder / "service.sqlite3"
    app = create_app(Settings(database_path=db, log_level=log_level))
    data.prefill(db)
    data.prefill_messaging(db)
    return app


def baseline_app(folder: Path) -> Wsgi:
    """Build the baseline's app on a pre-filled database."""
    db = folder / "baseline.sqlite3"
    baseline.init_db(db)
    data.prefill(db)
    data.prefill_messaging(db)
    return baseline.create_app(db)


def obvious_app(folder: Path) -> Wsgi:
    """Build obvious Pony's app on a database the service's CLI migrated."""
    db = folder / "obvious.sqlite3"
    load.prepare_migrated_db(db)
    return obvious.create_app(db)


def build_apps(
    folder: Path, stacks: list[str], log_level: str, baseline_only: bool
) -> dict[str, Wsgi]:
    """The apps to compare, by name, each on its own database under folder."""
    if baseline_only:
        stacks = ["baseline-A", "baseline"]
    apps: dict[str, Wsgi] = {}
    for name in stacks:
        (folder / name).mkdir()
        if name == "service":
            apps[name] = service_app(folder / name, log_level)
        elif name == "obvious":
            apps[name] = obvious_app(folder / name)
        else:
            apps[name] = baseline_app(folder / name)
    return apps


def ratios(medians: dict[str, float]) -> dict[str, float]:
    """Time ratios to the baseline, and the service's speed over obvious Pony's."""
    out = {}
    base = medians.get("baseline")
    for name, seconds in medians.items():
        if base and name != "baseline":
            out[f"{name}/baseline"] = seconds / base
    if "service" in medians and "obvious" in medians:
        out["service speed/obvious speed"] = medians["obvious"] / medians["service"]
    return out


def report(raw: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """Print each workload's times and ratios; return the ratios."""
    out = {}
    for workload, samples in raw.items():
        medians = {n: statistics.median(v) for n, v in samples.items()}
        times = "  ".join(f"{n} {t * 1e6:7.1f}" for n, t in medians.items())
        print(f"  {workload:8} us/request: {times}")
        out[workload] = ratios(medians)
        for label, ratio in out[workload].items():
            if label.endswith("/baseline"):
                name = label.split("/")[0]
                print(
                    f"  {'':8} {name} / baseline: {ratio:5.2f}x the time"
                    f" (= {1 / ratio:.0%} of the baseline's throughput)"
                )
            else:
                print(f"  {'':8} service: {ratio:5.2f}x obvious Pony's throughput")
    return out


def main(argv: list[str] | None = None) -> int:
    """Compare per-request time of the stacks in-process."""
    p = argparse.ArgumentParser(prog="python -m bench micro")
    p.add_argument("--requests", type=int, default=2000, help="requests per block")
    p.add_argument("--rounds", type=int, default=5, help="alternating blocks per app")
    p.add_argument(
        "--workloads",
        default="healthz,get,put",
        help="comma-separated from healthz,get,put,post,latest",
    )
    p.add_argument(
        "--stacks",
        default=",".join(load.STACKS),
        help=f"comma-separated from {','.join(load.STACKS)} (default all)",
    )
    p.add_argument("--log-level", default="INFO", help="service log level")
    p.add_argument(
        "--baseline-only",
        action="store_true",
        help="self-test: the baseline plays both parts",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="write raw numbers")
    args = p.parse_args(argv)
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    wanted = {s.strip() for s in args.stacks.split(",") if s.strip()}
    if not wanted or wanted - set(load.STACKS):
        p.error(f"--stacks: choose from {','.join(load.STACKS)}")
    stacks = [s for s in load.STACKS if s in wanted]
    with tempfile.TemporaryDirectory(prefix="bench-micro-") as tmp:
        apps = build_apps(Path(tmp), stacks, args.log_level, args.baseline_only)
        for app_name, app in apps.items():
            for method, path in (
                ("GET", "/healthz"),
                ("GET", "/v1/metadata/key-00001"),
            ):
                status, out = call(app, method, path)
                if not status.startswith("200"):
                    print(f"{app_name}: {method} {path} -> {status} {out[:200]!r}")
                    return 3
        raw: dict[str, dict[str, list[float]]] = {}
        for workload in workloads:
            requests = _requests(workload, args.requests, seed=7)
            for app_name, app in apps.items():
                status, out = call(app, *requests[0])
                if not status.startswith("20"):
                    print(f"{app_name}: {workload} -> {status} {out[:200]!r}")
                    return 3
            for app in apps.values():  # warm-up: caches, first-call paths
                time_block(app, requests[: max(50, len(requests) // 10)])
            samples: dict[str, list[float]] = {n: [] for n in apps}
            names = list(apps)
            for block in range(args.rounds):
                # Each app leads in turn, as in the load rounds.
                k = block % len(names)
                for app_name in names[k:] + names[:k]:
                    samples[app_name].append(time_block(apps[app_name], requests))
            raw[workload] = samples
        print(
            f"in-process WSGI, {args.rounds} x {args.requests} requests per app;"
            " ratio = time per request / the baseline's"
        )
        found = report(raw)
        if args.json:
            args.json.write_text(
                json.dumps({"ratios": found, "seconds_per_request": raw}, indent=2)
            )
    return 0
