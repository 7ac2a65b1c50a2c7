"""Live delivery's benchmark: python -m bench events [--quick] [--json PATH].

One `python -m service serve` process on a fresh SQLite file, and in this
process one selector holding every subscriber's stream (GET /v1/events):

- delivery latency: a member posts a message (keep-alive connection); from
  the moment its 201 is read to the moment each subscriber's socket gives
  the event, p50 and p99 over every subscriber and every post, with 100,
  1,000 and 2,000 subscribers (an event read before the 201 counts 0);
- memory per subscriber: the server's RSS with the subscribers open less
  its RSS before they opened, over their count;
- request throughput with 2,000 idle subscribers against none, under wrk
  (GET the conversation's newest messages), in alternating rounds of the
  same run: the ratio of the medians.

The subscribers are spread over SUBSCRIBER_USERS users, all members of
the one conversation posted to, each holding several streams (as a user
with several devices and tabs does): the fan-out is per stream, the
recipient query per member.
"""

from __future__ import annotations

import argparse
import http.client
import json
import selectors
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import procs, wrk

ADMIN = "bench-admin-token-0123456789"
SUBSCRIBER_USERS = 100
TARGETS = {"p99_ms_at_1000": 100.0, "kb_per_subscriber": 20.0, "rps_ratio": 0.9}


class Client:
    """A keep-alive JSON client for the service."""

    def __init__(self, port: int) -> None:
        self._con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, token: str, body: Any = None) -> Any:
        """One request; its decoded answer (any non-2xx raises)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {token}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        self._con.request(method, path, body=data, headers=headers)
        resp = self._con.getresponse()
        raw = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: {resp.status} {raw[:200]!r}")
        return json.loads(raw) if raw else None


def setup(client: Client, users: int) -> tuple[int, list[str], str]:
    """Users (each with a token), one conversation of them all; its id, tokens."""
    tokens = []
    for i in range(users):
        handle = f"sub{i:04d}"
        client.call(
            "POST", "/v1/users", ADMIN, {"handle": handle, "display_name": handle}
        )
        tokens.append(client.call("POST", f"/v1/users/{handle}/tokens", ADMIN)["token"])
    client.call("POST", "/v1/users", ADMIN, {"handle": "poster", "display_name": "P"})
    poster = client.call("POST", "/v1/users/poster/tokens", ADMIN)["token"]
    cid = client.call("POST", "/v1/conversations", poster, {"title": "bench"})["id"]
    for i in range(users):
        client.call(
            "POST",
            f"/v1/admin/conversations/{cid}/members",
            ADMIN,
            {"handle": f"sub{i:04d}"},
        )
    return cid, tokens, poster


class Subscribers:
    """Streams held by one selector; each counts the events it has read."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.socks: list[socket.socket] = []
        self.seen: dict[int, int] = {}

    def open(self, tokens: list[str], count: int) -> None:
        """Open count streams, round-robin over the tokens; wait for their heads."""
        for i in range(count):
            sock = socket.create_connection(("127.0.0.1", self.port))
            token = tokens[i % len(tokens)]
            sock.sendall(
                b"GET /v1/events HTTP/1.1\r\nHost: bench\r\n"
                b"Authorization: Bearer %s\r\n\r\n" % token.encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"stream {i} refused: {head[:100]!r}")
            sock.setblocking(False)
            self.socks.append(sock)
            self.seen[sock.fileno()] = 0
            self.selector.register(sock, selectors.EVENT_READ)

    def wait(self, want: int, timeout: float = 30) -> list[float]:
        """Read until every stream has seen want events; the moment each did."""
        moments: list[float] = []
        missing = {fd for fd, n in self.seen.items() if n < want}
        deadline = time.monotonic() + timeout
        while missing:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(missing)} streams missed an event")
            for key, _ in self.selector.select(1.0):
                now = time.perf_counter()
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                fd = key.fd
                self.seen[fd] += data.count(b"event: message.posted")
                if fd in missing and self.seen[fd] >= want:
                    missing.discard(fd)
                    moments.append(now)
        return moments

    def close(self) -> None:
        """Close every stream."""
        for sock in self.socks:
            self.selector.unregister(sock)
            sock.close()
        self.socks.clear()
        self.seen.clear()


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def latency(
    port: int, cid: int, tokens: list[str], poster: str, count: int, posts: int
) -> dict[str, Any]:
    """Delivery latency with count subscribers, over posts posts."""
    subs = Subscribers(port)
    subs.open(tokens, count)
    client = Client(port)
    samples: list[float] = []
    try:
        for i in range(posts):
            client.call(
                "POST", f"/v1/conversations/{cid}/messages", poster, {"body": f"m{i}"}
            )
            acknowledged = time.perf_counter()
            moments = subs.wait(i + 1)
            samples.extend(max(0.0, m - acknowledged) * 1000 for m in moments)
            time.sleep(0.02)  # posts apart: each measured on its own
    finally:
        subs.close()
    return {
        "subscribers": count,
        "posts": posts,
        "p50_ms": round(percentile(samples, 0.50), 2),
        "p99_ms": round(percentile(samples, 0.99), 2),
        "max_ms": round(max(samples), 2),
    }


def rss_kb(pid: int) -> int:
    """The process's resident set (kB)."""
    return procs.proc_status(pid, "VmRSS") or 0


def throughput(
    server: procs.Server,
    tokens: list[str],
    lua: Path,
    idle: int,
    rounds: int,
    duration: float,
) -> dict[str, Any]:
    """req/s with none and with idle subscribers, alternating; the medians' ratio."""
    binary = wrk.ensure_wrk()
    none: list[float] = []
    held: list[float] = []
    for _ in range(rounds):
        none.append(
            wrk.run(
                binary, server.port, lua, connections=16, duration=duration, core=None
            ).rps
        )
        subs = Subscribers(server.port)
        subs.open(tokens, idle)
        try:
            time.sleep(0.5)
            held.append(
                wrk.run(
                    binary,
                    server.port,
                    lua,
                    connections=16,
                    duration=duration,
                    core=None,
                ).rps
            )
        finally:
            subs.close()
        time.sleep(0.5)
    return {
        "idle_subscribers": idle,
        "rps_none": round(statistics.median(none), 1),
        "rps_idle": round(statistics.median(held), 1),
        "rps_ratio": round(statistics.median(held) / statistics.median(none), 3),
        "rounds": rounds,
    }


def lua_script(folder: Path, token: str, cid: int) -> Path:
    """wrk's script: GET the conversation's newest 20 messages with token."""
    path = folder / "events_read.lua"
    # The shared script (its done() prints the JSON line), then this request.
    path.write_text(
        wrk.script("healthz")
        + f'wrk.path = "/v1/conversations/{cid}/messages?limit=20"\n'
        + f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    return path


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; its report."""
    folder = Path(tempfile.mkdtemp(prefix="bench-events-"))
    db = folder / "events.sqlite3"
    _, migrated = procs.run_cli(
        procs.service_cmd("migrate"), {"SERVICE_DATABASE_PATH": str(db)}, None
    )
    if migrated.returncode != 0:
        raise RuntimeError(migrated.stderr.decode())
    port = procs.free_port()
    env = procs.service_env(db, port, 4, "WARNING")
    env["SERVICE_ADMIN_TOKEN"] = ADMIN
    env["SERVICE_EVENTS_STREAMS_PER_TOKEN"] = "1000"  # noqa: S105 - a count
    server = procs.start(
        "service",
        procs.service_cmd("serve"),
        port=port,
        env=env,
        log_path=folder / "serve.log",
        core=None,
    )
    report: dict[str, Any] = {}
    try:
        server.wait_ready()
        client = Client(port)
        cid, tokens, poster = setup(client, SUBSCRIBER_USERS)
        for i in range(50):
            client.call(
                "POST",
                f"/v1/conversations/{cid}/messages",
                poster,
                {"body": f"seed {i}"},
            )
        # Memory first, on a fresh process: RSS does not shrink once a
        # run's peak was reached. A few streams first load the code paths.
        subs = Subscribers(port)
        subs.open(tokens, 20)
        subs.close()
        time.sleep(0.5)
        before = rss_kb(server.pid)
        subs = Subscribers(port)
        subs.open(tokens, args.memory_subscribers)
        time.sleep(1.0)
        after = rss_kb(server.pid)
        subs.close()
        report["memory"] = {
            "subscribers": args.memory_subscribers,
            "rss_before_kb": before,
            "rss_with_kb": after,
            "kb_per_subscriber": round((after - before) / args.memory_subscribers, 2),
        }
        report["latency"] = [
            latency(port, cid, tokens, poster, n, args.posts) for n in args.subscribers
        ]
        lua = lua_script(folder, poster, cid)
        report["throughput"] = throughput(
            server, tokens, lua, args.memory_subscribers, args.rounds, args.duration
        )
    finally:
        server.stop()
    return report


def verdicts(report: dict[str, Any]) -> list[str]:
    """The targets missed (empty: all met)."""
    missed = []
    at_1000 = [r for r in report["latency"] if r["subscribers"] == 1000]
    if at_1000 and at_1000[0]["p99_ms"] >= TARGETS["p99_ms_at_1000"]:
        missed.append(f"p99 at 1000 subscribers {at_1000[0]['p99_ms']} ms >= 100 ms")
    if report["memory"]["kb_per_subscriber"] >= TARGETS["kb_per_subscriber"]:
        missed.append(
            f"{report['memory']['kb_per_subscriber']} KB per subscriber >= 20"
        )
    if report["throughput"]["rps_ratio"] < TARGETS["rps_ratio"]:
        missed.append(f"req/s ratio {report['throughput']['rps_ratio']} < 0.9")
    return missed


def print_report(report: dict[str, Any]) -> None:
    """The report as a few lines."""
    for row in report["latency"]:
        print(
            f"latency  {row['subscribers']:>5} subscribers  p50 {row['p50_ms']:7.2f} ms"
            f"  p99 {row['p99_ms']:7.2f} ms  max {row['max_ms']:7.2f} ms"
            f"  ({row['posts']} posts)"
        )
    mem = report["memory"]
    print(
        f"memory   {mem['subscribers']:>5} subscribers  {mem['kb_per_subscriber']} KB each"
        f"  (RSS {mem['rss_before_kb']} -> {mem['rss_with_kb']} kB)"
    )
    tp = report["throughput"]
    print(
        f"requests {tp['idle_subscribers']:>5} idle subscribers  {tp['rps_idle']} req/s"
        f"  vs none {tp['rps_none']} req/s  ratio {tp['rps_ratio']}"
        f"  (median of {tp['rounds']} alternating rounds)"
    )


def main(argv: list[str]) -> int:
    """python -m bench events."""
    p = argparse.ArgumentParser(prog="python -m bench events", description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer posts and rounds")
    p.add_argument("--json", type=Path, help="also write the report here")
    p.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed"
    )
    args = p.parse_args(argv)
    args.subscribers = (100, 1000, 2000)
    args.posts = 10 if args.quick else 50
    args.memory_subscribers = 2000
    args.rounds = 2 if args.quick else 3
    args.duration = 2.0 if args.quick else 5.0
    report = run(args)
    report["targets"] = TARGETS
    report["missed"] = verdicts(report)
    print_report(report)
    print(
        "targets: "
        + ("all met" if not report["missed"] else "; ".join(report["missed"]))
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if args.strict and report["missed"] else 0
