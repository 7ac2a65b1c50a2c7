"""Start, probe and stop server processes pinned to a CPU core."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench.data import REPO


def cores() -> tuple[int | None, int | None]:
    """Return (server core, load-generator core), or Nones when unpinnable."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2 or shutil.which("taskset") is None:
        return None, None
    return allowed[0], allowed[1]


def pinned(cmd: list[str], core: int | None) -> list[str]:
    """Prefix cmd with taskset for core (taskset execs: the pid stays)."""
    return cmd if core is None else ["taskset", "-c", str(core), *cmd]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """Return the environment for a child: ours, the repo importable, extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), env.get("PYTHONPATH", "")) if p
    )
    env.update(extra)
    return env


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET path on 127.0.0.1:port; return (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """Send one request with a JSON body; return (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5.0)
    try:
        sent = {"Content-Type": "application/json"} if body is not None else {}
        sent.update(headers or {})
        conn.request(method, path, body=body, headers=sent)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def proc_status(pid: int, field_name: str) -> int | None:
    """Return a kB field (VmHWM, VmRSS) of /proc/pid/status, in kB."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """Return user+system CPU seconds the process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A running server process in its own process group."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    started: float
    log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """The server's pid (taskset execs into it)."""
        return self.proc.pid

    def wait_ready(self, path: str = "/readyz", timeout: float = 60.0) -> float:
        """Poll path until it answers 200; return seconds since start."""
        deadline = self.started + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} before ready;"
                    f" log tail:\n{self.log_tail()}"
                )
            try:
                status, _ = http_get(self.port, path, timeout=1.0)
            except OSError:
                time.sleep(0.002)
                continue
            if status == 200:
                return time.perf_counter() - self.started
            time.sleep(0.002)
        raise RuntimeError(
            f"{self.name} not ready after {timeout:.0f} s; log tail:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the server's combined output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the process group, SIGKILL it if it lingers; return the code."""
        try:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(5)
            return self.proc.returncode
        finally:
            if self.log is not None:
                self.log.close()
                self.log = None


def start(
    name: str,
    cmd: list[str],
    *,
    port: int,
    env: dict[str, str],
    log_path: Path,
    core: int | None,
) -> Server:
    """Start cmd pinned to core, output to log_path, in a new process group."""
    log = open(log_path, "ab")  # noqa: SIM115 - closed by Server.stop
    started = time.perf_counter()
    proc = subprocess.Popen(
        pinned(cmd, core),
        cwd=REPO,
        env=child_env(env),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Server(name, port, proc, log_path, started, log)


def service_cmd(*args: str) -> list[str]:
    """Return the command line of the service's CLI."""
    return [sys.executable, "-m", "service", *args]


def service_env(db: Path, port: int, threads: int, log_level: str) -> dict[str, str]:
    """Return the SERVICE_* environment for one service process."""
    return {
        "SERVICE_DATABASE_PATH": str(db),
        "SERVICE_HOST": "127.0.0.1",
        "SERVICE_PORT": str(port),
        "SERVICE_THREADS": str(threads),
        "SERVICE_LOG_LEVEL": log_level,
    }


def service_env_url(
    url: str, port: int, threads: int, log_level: str
) -> dict[str, str]:
    """Return the SERVICE_* environment for one service process on PostgreSQL."""
    env = service_env(Path(), port, threads, log_level)
    del env["SERVICE_DATABASE_PATH"]
    env["SERVICE_DATABASE_URL"] = url
    return env


def bench_server_cmd(module: str, db: Path, port: int, threads: int) -> list[str]:
    """Return the command line of a bench-only server (bench.baseline, bench.obvious)."""
    return [
        sys.executable,
        "-m",
        module,
        "--db",
        str(db),
        "--port",
        str(port),
        "--threads",
        str(threads),
    ]


def start_service(
    db: Path | str,
    threads: int,
    log_level: str,
    log_path: Path,
    core: int | None,
    name: str = "service",
    workers: int = 1,
) -> Server:
    """Start `python -m service serve` on db (an SQLite file or a PostgreSQL URL)."""
    port = free_port()
    env = (
        service_env_url(db, port, threads, log_level)
        if isinstance(db, str)
        else service_env(db, port, threads, log_level)
    )
    env["SERVICE_WORKERS"] = str(workers)
    return start(
        name,
        service_cmd("serve"),
        port=port,
        env=env,
        log_path=log_path,
        core=core,
    )


def start_bench_server(
    name: str, module: str, db: Path, threads: int, log_path: Path, core: int | None
) -> Server:
    """Start a bench-only server (`python -m bench.<x>`) on db."""
    port = free_port()
    return start(
        name,
        bench_server_cmd(module, db, port, threads),
        port=port,
        env={},
        log_path=log_path,
        core=core,
    )


def start_baseline(db: Path, threads: int, log_path: Path, core: int | None) -> Server:
    """Start the bare baseline on db."""
    return start_bench_server("baseline", "bench.baseline", db, threads, log_path, core)


def run_cli(
    args: list[str], env: dict[str, str], core: int | None, timeout: float = 300.0
) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    """Run a short command pinned to core; return (seconds, result)."""
    started = time.perf_counter()
    result = subprocess.run(
        pinned(args, core),
        cwd=REPO,
        env=child_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return time.perf_counter() - started, result
