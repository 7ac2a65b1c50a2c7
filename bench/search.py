"""python -m bench search: what one user's search costs, on both engines.

Issue 23's targets, measured in one run, as ratios:

- a caller with 100 messages in a database holding 300,000 messages of
  other users (word "lunch" in 1 of 20 of them, and in 20 of the
  caller's): search p99 over HTTP on SQLite within 3x of PostgreSQL's,
  and under 20 ms on this machine;
- with 8 connections flooding searches (wrk; SERVICE_SEARCH_RATE raised
  so the rate limit does not hide the search's own cost), another user's
  GET .../messages?limit=5 keeps its p99 within 3x of its unloaded p99.

Both databases get the same rows (sqlite3 / COPY after `migrate`); the
search index rows are computed by db/domain/search_index.terms_of, as
the service writes them. `python -m bench search --quick` uses 30,000
messages. Nothing here asserts: it prints, and exits 1 with --strict
when a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import http.client
import io
import json
import random
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2

from bench import postgres, procs
from db.domain.search_index import terms_of

NOW = "2026-12-01 00:00:00.000000"
WORDS = [f"w{i}" for i in range(400)]
PER_CONVERSATION = 100
CALLER, READER, FLOODER = 1, 2, 3
CALLER_CONV, READER_CONV, FLOODER_CONV = 1, 2, 3
TOKENS = {CALLER: "sft_caller", READER: "sft_reader", FLOODER: "sft_flooder"}


def rows(others: int) -> dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]:
    """Every row of the bench database, by table, in foreign-key order."""
    rng = random.Random(23)
    users = [(u, f"user{u}", f"User {u}", NOW) for u in range(1, 4)]
    convs = [(c, "t", c, c, NOW, NOW) for c in (CALLER_CONV, READER_CONV, FLOODER_CONV)]
    members = [(c, c, NOW) for c in (CALLER_CONV, READER_CONV, FLOODER_CONV)]
    messages: list[tuple[Any, ...]] = []

    def body(lunch: bool) -> str:
        words = rng.sample(WORDS, 8) + (["lunch"] if lunch else [])
        rng.shuffle(words)
        return " ".join(words)

    next_id = 1
    for conv, count in ((CALLER_CONV, 100), (READER_CONV, 50), (FLOODER_CONV, 1)):
        for i in range(count):
            messages.append((next_id, conv, conv, body(i % 5 == 0), NOW))
            next_id += 1
    conv = 3
    for i in range(others):
        if i % PER_CONVERSATION == 0:
            conv += 1
            user = 3 + conv
            users.append((user, f"user{user}", f"User {user}", NOW))
            convs.append((conv, "t", user, user, NOW, NOW))
            members.append((conv, user, NOW))
        messages.append((next_id, conv, 3 + conv, body(i % 20 == 0), NOW))
        next_id += 1
    rng.shuffle(messages)  # ids interleave across conversations, as in service
    messages = [(i + 1, *m[1:]) for i, m in enumerate(messages)]
    terms = [(m[1], t, m[0]) for m in messages for t in terms_of(m[3])]
    tokens = [
        (u, hashlib.sha256(t.encode()).digest(), NOW, None) for u, t in TOKENS.items()
    ]
    return {
        "users": (("id", "handle", "display_name", "created_at"), users),
        "api_tokens": (("user_id", "token_hash", "created_at", "last_used_at"), tokens),
        "conversations": (
            ("id", "title", "created_by", "owner_id", "created_at", "last_message_at"),
            convs,
        ),
        "memberships": (("conversation_id", "user_id", "joined_at"), members),
        "messages": (
            ("id", "conversation_id", "author_id", "body", "created_at"),
            messages,
        ),
        "search_terms": (("conversation_id", "term", "message_id"), terms),
    }


def migrate(env: dict[str, str]) -> None:
    """`python -m service migrate` with env; RuntimeError naming the failure."""
    _, result = procs.run_cli(procs.service_cmd("migrate"), env, None, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode(errors="replace"))


def fill_sqlite(path: Path, data: dict[str, Any]) -> None:
    """Migrate the file, then insert data in one transaction."""
    migrate(procs.service_env(path, procs.free_port(), 1, "WARNING"))
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        for table, (columns, values) in data.items():
            marks = ", ".join("?" for _ in columns)
            con.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values
            )
        con.execute("COMMIT")
        con.execute("ANALYZE")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def fill_postgres(url: str, data: dict[str, Any]) -> None:
    """Migrate the database, COPY data in, move the sequences on, ANALYZE."""
    migrate(procs.service_env_url(url, procs.free_port(), 1, "WARNING"))
    con = psycopg2.connect(url)
    try:
        with con, con.cursor() as cur:
            for table, (columns, values) in data.items():
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                for row in values:
                    writer.writerow(
                        ["\\x" + v.hex() if isinstance(v, bytes) else v for v in row]
                    )
                buffer.seek(0)
                cur.copy_expert(
                    f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)",
                    buffer,
                )
            for table in ("users", "api_tokens", "conversations", "messages"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        con.close()


def latencies(port: int, path: str, token: str, n: int) -> list[float]:
    """Seconds each of n sequential GETs took on one keep-alive connection."""
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    headers = {"Authorization": f"Bearer {token}"}
    try:
        for _ in range(n):
            began = time.perf_counter()
            con.request("GET", path, headers=headers)
            response = con.getresponse()
            response.read()
            out.append(time.perf_counter() - began)
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status}")
    finally:
        con.close()
    return out


def p99(values: list[float]) -> float:
    """The 99th percentile, in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def flooded_read_p99(
    port: int, n: int, flood_path: str = "/v1/search?q=lunch"
) -> float:
    """A reader's p99 while wrk floods flood_path (searches) over 8 connections."""
    read = f"/v1/conversations/{READER_CONV}/messages?limit=5"
    flood = subprocess.Popen(
        [
            "wrk", "-t1", "-c8", "-d600s",
            "-H", f"Authorization: Bearer {TOKENS[FLOODER]}",
            f"http://127.0.0.1:{port}{flood_path}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(2)
        return p99(latencies(port, read, TOKENS[READER], n))
    finally:
        flood.terminate()
        flood.wait(10)


def measure(server: procs.Server, n: int) -> dict[str, float]:
    """Search p99 unloaded; a reader's p99 unloaded, then under a search flood."""
    port = server.port
    search = "/v1/search?q=lunch&limit=20"
    read = f"/v1/conversations/{READER_CONV}/messages?limit=5"
    latencies(port, search, TOKENS[CALLER], 20)  # warm up
    latencies(port, read, TOKENS[READER], 20)
    result = {
        "search_p99_ms": p99(latencies(port, search, TOKENS[CALLER], n)),
        "read_p99_ms": p99(latencies(port, read, TOKENS[READER], n)),
    }
    result["read_p99_flooded_ms"] = flooded_read_p99(port, n)
    # The control: the same flood of the cheapest authenticated request.
    result["read_p99_flooded_by_me_ms"] = flooded_read_p99(port, n, "/v1/me")
    return result


@contextlib.contextmanager
def serve(db: Path | str, log: Path, rate: int = 100_000) -> Iterator[procs.Server]:
    """The service on db, 8 threads, SERVICE_SEARCH_RATE rate; stopped afterwards."""
    port = procs.free_port()
    env = (
        procs.service_env_url(db, port, 8, "WARNING")
        if isinstance(db, str)
        else procs.service_env(db, port, 8, "WARNING")
    )
    env["SERVICE_SEARCH_RATE"] = str(rate)
    server = procs.start(
        "service",
        procs.service_cmd("serve"),
        port=port,
        env=env,
        log_path=log,
        core=None,
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    """Build both databases, measure both, print the targets."""
    parser = argparse.ArgumentParser(prog="python -m bench search")
    parser.add_argument("--quick", action="store_true", help="30,000 messages")
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)
    others = 30_000 if args.quick else args.messages
    data = rows(others)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        folder = Path(tmp)
        fill_sqlite(folder / "db.sqlite3", data)
        with serve(folder / "db.sqlite3", folder / "sqlite.log") as server:
            results["sqlite"] = measure(server, args.requests)
        # The shipped default rate: the flood is mostly 429s after a burst.
        with serve(folder / "db.sqlite3", folder / "sqlite.log", 60) as server:
            results["sqlite"]["read_p99_flooded_rate60_ms"] = flooded_read_p99(
                server.port, args.requests
            )
        pg = postgres.start_server(None)
        try:
            url = pg.create_database("bench_search")
            fill_postgres(url, data)
            with serve(url, folder / "postgres.log") as server:
                results["postgres"] = measure(server, args.requests)
            with serve(url, folder / "postgres.log", 60) as server:
                results["postgres"]["read_p99_flooded_rate60_ms"] = flooded_read_p99(
                    server.port, args.requests
                )
        finally:
            pg.stop()
    sq, pg_ = results["sqlite"], results["postgres"]
    targets = {
        "sqlite search p99 / postgres search p99 <= 3": sq["search_p99_ms"]
        / pg_["search_p99_ms"],
        "sqlite search p99 < 20 ms": sq["search_p99_ms"],
        "sqlite flooded read p99 / unloaded read p99 <= 3": sq["read_p99_flooded_ms"]
        / sq["read_p99_ms"],
        "postgres flooded read p99 / unloaded read p99 <= 3": pg_["read_p99_flooded_ms"]
        / pg_["read_p99_ms"],
    }
    targets["sqlite flooded (rate 60/min) read p99 / unloaded <= 3"] = (
        sq["read_p99_flooded_rate60_ms"] / sq["read_p99_ms"]
    )
    targets["postgres flooded (rate 60/min) read p99 / unloaded <= 3"] = (
        pg_["read_p99_flooded_rate60_ms"] / pg_["read_p99_ms"]
    )
    limits = [3.0, 20.0, 3.0, 3.0, 3.0, 3.0]
    print(f"{others:,} messages of other users; {args.requests} requests per figure")
    for engine, figures in results.items():
        print(engine, "  ".join(f"{k}={v:.2f}" for k, v in figures.items()))
    missed = 0
    for (name, value), limit in zip(targets.items(), limits, strict=True):
        ok = value <= limit
        missed += not ok
        print(f"{'met   ' if ok else 'MISSED'} {name}: {value:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "targets": targets}))
    return 1 if args.strict and missed else 0
