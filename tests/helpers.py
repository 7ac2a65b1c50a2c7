"""Shared test helpers: migration folders and real `serve` processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.pg import find_bindir

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = REPO / "schema_migrations"
# The shipped migration versions; tests add their own files after LATEST.
SHIPPED = sorted(
    {int(p.name[:4]) for p in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql")}
)
LATEST = SHIPPED[-1]
# For tests that run check or makemigration, which start a throwaway PostgreSQL
# server: skipped where its binaries are missing, unless CI requires them.
needs_postgres_binaries = pytest.mark.skipif(
    find_bindir() is None and os.environ.get("SERVICE_REQUIRE_POSTGRES") != "1",
    reason="PostgreSQL server binaries not found (apt-get install postgresql)",
)


def copy_migrations(target: Path, extra: dict[str, str] | None = None) -> Path:
    """Copy the project's migration files to target and add extra files."""
    target.mkdir(parents=True, exist_ok=True)
    for file in MIGRATIONS.glob("*.sql"):
        shutil.copy(file, target / file.name)
    for name, sql in (extra or {}).items():
        (target / name).write_text(sql)
    return target


def service_env(database: Path, **settings: Any) -> dict[str, str]:
    """A clean environment for a service process: only our SERVICE_* values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    env["SERVICE_DATABASE_PATH"] = str(database)
    env.setdefault("SERVICE_PORT", "0")
    for key, value in settings.items():
        env[f"SERVICE_{key.upper()}"] = str(value)
    return env


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `python -m service ARGS` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )


@dataclass
class ServeProcess:
    """A running `python -m service serve` and what it logged."""

    process: subprocess.Popen[str]
    url: str = ""
    lines: list[dict[str, Any]] = field(default_factory=list)
    pump: threading.Thread | None = None

    def request(
        self, method: str, path: str, body: Any = None, timeout: float = 30
    ) -> tuple[int, dict[str, str], Any]:
        """Send one HTTP request; returns status, headers and decoded JSON."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, dict(resp.headers), json.loads(raw) if raw else None
        except urllib.error.HTTPError as ex:
            raw = ex.read()
            return ex.code, dict(ex.headers), json.loads(raw) if raw else None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Signal the process and wait for it; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self.collect()
        if self.process.stderr:
            self.process.stderr.close()
        return code

    def collect(self) -> list[dict[str, Any]]:
        """Wait for the log reader to reach the end of stderr (after exit)."""
        if self.pump is not None:
            self.pump.join(timeout=10)
        elif self.process.stderr and self.process.poll() is not None:
            for line in self.process.stderr:
                self.lines.append(_parse(line))
        return self.lines


def _parse(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {"raw": line.rstrip("\n")}
    return value if isinstance(value, dict) else {"raw": line}


SERVE = (sys.executable, "-m", "service", "serve")


def launch_serve(
    env: dict[str, str], command: Sequence[str] = SERVE, **popen: Any
) -> ServeProcess:
    """Start `serve` (or command, which runs it) without waiting for it."""
    process = subprocess.Popen(
        list(command),
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        **popen,
    )
    return ServeProcess(process)


def wait_ready(served: ServeProcess, timeout: float = 30) -> ServeProcess:
    """Read the log until the ready line; raise with the log if the process dies."""
    process = served.process
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            process.wait(timeout=5)
            process.stderr.close()
            raise RuntimeError(
                f"serve exited with {process.returncode}: {served.lines}"
            )
        entry = _parse(line)
        served.lines.append(entry)
        if entry.get("event.action") == "ready":
            served.url = entry["url.full"]
            _drain_in_background(served)
            return served
    process.kill()
    process.wait(timeout=10)
    process.stderr.close()
    raise RuntimeError(f"serve did not become ready in {timeout} s: {served.lines}")


def start_serve(
    env: dict[str, str],
    timeout: float = 30,
    command: Sequence[str] = SERVE,
    **popen: Any,
) -> ServeProcess:
    """Start `serve` (or command, which runs it) and wait until it is ready."""
    return wait_ready(launch_serve(env, command, **popen), timeout)


def _drain_in_background(served: ServeProcess) -> None:
    """Keep reading stderr so the pipe never fills and blocks the server."""

    def pump() -> None:
        assert served.process.stderr is not None
        for line in served.process.stderr:
            served.lines.append(_parse(line))

    served.pump = threading.Thread(target=pump, daemon=True)
    served.pump.start()
