"""Helpers for the reliability suite: keep-alive clients, lock holders, checks."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.helpers import MIGRATIONS, REPO, ServeProcess, start_serve

PROBLEM_JSON = "application/problem+json"
# The newest migration the project ships; extra test files are numbered after it.
SHIPPED = max(
    int(file.name[:4]) for file in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql")
)


class Client:
    """One keep-alive HTTP/1.1 connection that reconnects after an error."""

    def __init__(self, url: str, timeout: float = 30) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request; returns status, lower-cased headers and the body.

        body is sent as JSON; raw is sent as is. Connection errors propagate
        (after the connection is dropped, so the next call reconnects).
        """
        sent_headers = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent_headers.setdefault("Content-Type", "application/json")
        if self._conn is None:
            self._conn = http.client.HTTPConnection(
                self.host, self.port, timeout=self.timeout
            )
        try:
            self._conn.request(method, path, body=data, headers=sent_headers)
            resp = self._conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        got = {k.lower(): v for k, v in resp.getheaders()}
        if resp.will_close:
            self.close()
        return resp.status, got, payload

    def json(
        self, method: str, path: str, body: Any = None
    ) -> tuple[int, dict[str, str], Any]:
        """Like request(), with the body decoded as JSON (None when empty)."""
        status, headers, payload = self.request(method, path, body)
        return status, headers, json.loads(payload) if payload else None

    def close(self) -> None:
        """Drop the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def kill(server: ServeProcess) -> None:
    """SIGKILL a serve process (if still running) and reap it."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGKILL)
    with contextlib.suppress(Exception):
        server.process.wait(timeout=10)
    with contextlib.suppress(Exception):
        server.collect()
    if server.process.stderr is not None:
        server.process.stderr.close()


@contextlib.contextmanager
def serving(
    env: dict[str, str], timeout: float = 30, **launch: Any
) -> Iterator[ServeProcess]:
    """A ready serve process, SIGKILLed on the way out if still running."""
    server = start_serve(env, timeout, **launch)
    try:
        yield server
    finally:
        kill(server)


def with_rlimit(which: int, soft: int, hard: int) -> Callable[[], None]:
    """A preexec_fn that starts the child with this resource limit (resource.RLIMIT_*)."""

    def apply() -> None:
        resource.setrlimit(which, (soft, hard))

    return apply


def db_rows(
    path: Path, sql: str, params: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """Run one query on a fresh read connection."""
    con = sqlite3.connect(path, timeout=10)
    try:
        return [tuple(r) for r in con.execute(sql, params)]
    finally:
        con.close()


def integrity(path: Path) -> str:
    """PRAGMA integrity_check of the file ('ok' when sound)."""
    return "; ".join(str(r[0]) for r in db_rows(path, "PRAGMA integrity_check"))


def remove_sidecars(path: Path) -> None:
    """Delete the -wal and -shm files next to a database file."""
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


_HOLDER = r"""
import sqlite3, sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
con = sqlite3.connect(path, isolation_level=None, timeout=30)
con.execute("BEGIN IMMEDIATE")
con.execute(
    "INSERT OR REPLACE INTO app_metadata (key, value, updated_at) "
    "VALUES ('other-process', 'held', '2026-01-01 00:00:00')"
)
print("locked", flush=True)
time.sleep(seconds)
con.execute("COMMIT")
print("released", flush=True)
"""


@contextlib.contextmanager
def write_lock_held(path: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holds SQLite's write lock on path for seconds.

    It writes the key 'other-process' inside its transaction and commits at
    the end. Yields once the lock is held; the process is killed on exit if
    it is still running.
    """
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()
        assert line.strip() == "locked", f"lock holder failed: {line!r}"
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=10)
        if holder.stdout:
            holder.stdout.close()


def wait_exit(process: subprocess.Popen[str], timeout: float) -> int:
    """Wait for a process; kill it and fail when it outlives timeout."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        raise


def env_seconds(name: str, default: float) -> float:
    """A duration from the environment (for local runs), else default."""
    value = os.environ.get(name)
    return float(value) if value else default


def problem_of(status: int, headers: dict[str, str], payload: bytes) -> dict[str, Any]:
    """Assert a problem+json answer matching status; return its body."""
    assert headers.get("content-type", "").startswith(PROBLEM_JSON), (
        status,
        headers,
        payload[:200],
    )
    body = json.loads(payload)
    assert body["status"] == status, body
    assert body.get("title"), body
    assert body.get("request_id") == headers.get("x-request-id"), (body, headers)
    return dict(body)


def metric_samples(
    client: Client,
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """GET /metrics, parsed: (sample name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    status, headers, payload = client.request("GET", "/metrics")
    assert status == 200, payload[:200]
    assert headers["content-type"].startswith("text/plain"), headers
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(payload.decode())
        for sample in family.samples
    }


def metric(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float],
    name: str,
    **labels: str,
) -> float:
    """The value of one sample (0 when it was never recorded)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
