"""Workloads as wrk Lua scripts, and running wrk to one JSON result."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.data import BENCH_TOKEN, CONVERSATION_ID, KEYS
from bench.procs import pinned

MARKER = "BENCH_JSON "

# Shared by every script: number the threads, seed each one differently but
# reproducibly, and print one JSON line from done().
_COMMON = """
local counter = 0
local threads = {}
setup = function(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local nkeys = %(keys)d
local put_headers = { ["Content-Type"] = "application/json" }
local auth_headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer %(token)s",
}
local messages_path = "/v1/conversations/%(conversation)d/messages"
local seq = 0

init = function(args)
  math.randomseed(12345 + (tid or 0) * 7919)
end

local function random_path()
  return string.format("/v1/metadata/key-%%05d", math.random(0, nkeys - 1))
end

local function put_request()
  seq = seq + 1
  local body = string.format('{"value":"v%%d-%%08d-payload-of-some-length"}',
                             tid or 0, seq)
  return wrk.format("PUT", random_path(), put_headers, body)
end

local function post_message()
  seq = seq + 1
  local body = string.format('{"body":"message %%d-%%08d with a few words of text"}',
                             tid or 0, seq)
  return wrk.format("POST", messages_path, auth_headers, body)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(marker)s{"requests":%%d,"duration_us":%%d,"bytes":%%d,' ..
    '"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,"mean_us":%%.1f}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""

_REQUEST = {
    # wrk pre-builds one request when request() is absent: the cheapest path.
    "healthz": 'wrk.path = "/healthz"\n',
    "get": "request = function() return wrk.format('GET', random_path()) end\n",
    "put": "request = put_request\n",
    "mixed": (
        "request = function()\n"
        "  if math.random(1, 10) == 1 then return put_request() end\n"
        "  return wrk.format('GET', random_path())\n"
        "end\n"
    ),
    # The messaging API, authenticated with the bench user's token.
    "post": "request = post_message\n",
    "latest": (
        "request = function()\n"
        "  return wrk.format('GET', messages_path .. '?limit=50', auth_headers)\n"
        "end\n"
    ),
}

WORKLOADS = tuple(_REQUEST)


def script(workload: str) -> str:
    """Return the Lua script of a workload."""
    values = {
        "keys": KEYS,
        "marker": MARKER,
        "token": BENCH_TOKEN,
        "conversation": CONVERSATION_ID,
    }
    return _COMMON % values + _REQUEST[workload]


def write_scripts(folder: Path) -> dict[str, Path]:
    """Write one .lua file per workload into folder."""
    paths = {}
    for name in WORKLOADS:
        path = folder / f"{name}.lua"
        path.write_text(script(name))
        paths[name] = path
    return paths


@dataclass(frozen=True)
class Result:
    """One wrk run, as its done() hook reported it."""

    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int
    socket_errors: int
    status_errors: int
    timeouts: int


def parse(stdout: str) -> Result:
    """Find the done() JSON line in wrk's output and turn it into a Result."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            raw = json.loads(line[len(MARKER) :])
            break
    else:
        raise RuntimeError(f"wrk printed no {MARKER.strip()} line:\n{stdout}")
    duration = raw["duration_us"] / 1e6
    socket_errors = raw["connect"] + raw["read"] + raw["write"]
    return Result(
        requests=raw["requests"],
        duration_s=duration,
        rps=raw["requests"] / duration if duration else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        errors=socket_errors + raw["status"] + raw["timeout"],
        socket_errors=socket_errors,
        status_errors=raw["status"],
        timeouts=raw["timeout"],
    )


def ensure_wrk() -> str:
    """Return wrk's path, installing Debian's package first if it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: apt-get install -y wrk", flush=True)
    install = ["apt-get", "install", "-y", "wrk"]
    # A fresh machine may have no package lists yet: update once, then retry.
    for cmd in (install, ["apt-get", "update"], install):
        subprocess.run(cmd, check=False, timeout=300, stdin=subprocess.DEVNULL)
        if shutil.which("wrk"):
            break
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is missing and apt-get could not install it")
    return found


def run(
    wrk: str,
    port: int,
    lua: Path,
    *,
    connections: int,
    duration: float,
    core: int | None,
    threads: int = 1,
) -> Result:
    """Run wrk against 127.0.0.1:port for duration seconds; return its Result."""
    cmd = pinned(
        [
            wrk,
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "5s",
            "-s",
            str(lua),
            f"http://127.0.0.1:{port}",
        ],
        core,
    )
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr}")
    return parse(proc.stdout)
