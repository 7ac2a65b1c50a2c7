"""In-process micro-benchmark: middleware + one request, as direct WSGI calls.

No sockets, no waitress, no wrk: what is left is the per-request cost of
each app (routing, middleware, the ORM or sqlite3, JSON). Both apps run in
this process on their own pre-filled database, in alternating blocks, and
only the ratio is reported, since absolute times depend on the machine.
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

from bench import baseline, data

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


def main(argv: list[str] | None = None) -> int:
    """Compare per-request time of the service and the baseline in-process."""
    p = argparse.ArgumentParser(prog="python -m bench micro")
    p.add_argument("--requests", type=int, default=2000, help="requests per block")
    p.add_argument("--rounds", type=int, default=5, help="alternating blocks per app")
    p.add_argument(
        "--workloads",
        default="healthz,get,put",
        help="comma-separated from healthz,get,put,post,latest",
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
    with tempfile.TemporaryDirectory(prefix="bench-micro-") as tmp:
        folder = Path(tmp)
        (folder / "a").mkdir()
        (folder / "b").mkdir()
        base = baseline_app(folder / "b")
        if args.baseline_only:
            subject, name = baseline_app(folder / "a"), "baseline-A"
        else:
            subject, name = service_app(folder / "a", args.log_level), "service"
        apps = {name: subject, "baseline": base}
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
            for _ in range(args.rounds):
                for app_name, app in apps.items():
                    samples[app_name].append(time_block(app, requests))
            raw[workload] = samples
        print(
            f"in-process WSGI, {args.rounds} x {args.requests} requests per app;"
            " ratio = service time per request / baseline time per request"
        )
        ratios = {}
        for workload, samples in raw.items():
            ratio = statistics.median(samples[name]) / statistics.median(
                samples["baseline"]
            )
            ratios[workload] = ratio
            print(
                f"  {workload:8} {name} / baseline: {ratio:5.2f}x the time"
                f" (= {1 / ratio:.0%} of the baseline's throughput)"
            )
        if args.json:
            args.json.write_text(
                json.dumps({"ratios": ratios, "seconds_per_request": raw}, indent=2)
            )
    return 0
