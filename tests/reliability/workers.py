"""Helpers for the worker tests: a supervisor's workers and who holds a connection."""

from __future__ import annotations

import http.client
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers import ServeProcess
from tests.reliability.support import Client


def worker_pids(server: ServeProcess) -> list[int]:
    """The supervisor's live child processes (its workers)."""
    pid = server.process.pid
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return sorted(int(part) for part in text.split())


def wait_for_workers(
    server: ServeProcess, count: int, timeout: float = 30, without: tuple[int, ...] = ()
) -> list[int]:
    """Wait until count workers run (none of them in without) and /readyz says so."""
    client = Client(server.url, timeout=5)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            pids = worker_pids(server)
            if len(pids) == count and not set(pids) & set(without):
                status, _, body = client.json("GET", "/readyz")
                if status == 200 and body["workers"] == {
                    "ready": count,
                    "configured": count,
                }:
                    return pids
            time.sleep(0.05)
    finally:
        client.close()
    raise AssertionError(
        f"{count} workers not ready in {timeout} s: {server.lines[-5:]}"
    )


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _server_side_inode(pid: int, server_port: int, client_port: int) -> int | None:
    """The inode of the accepted socket of a connection from client_port."""
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as fh:
            next(fh)
            for line in fh:
                fields = line.split()
                local, remote = fields[1], fields[2]
                if (
                    int(local.rsplit(":", 1)[1], 16) == server_port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port
                ):
                    return int(fields[9])
    return None


def owner(server: ServeProcess, client_port: int, pids: list[int]) -> int | None:
    """Which worker holds the server side of the connection from client_port."""
    port = int(server.url.rsplit(":", 1)[1])
    inode = _server_side_inode(pids[0], port, client_port)
    if inode is None:
        return None
    for pid in pids:
        if inode in _socket_inodes(pid):
            return pid
    return None


def connected_client(server: ServeProcess) -> Client:
    """A Client whose connection is open (one /healthz answered on it)."""
    client = Client(server.url, timeout=30)
    status, _, _ = client.request("GET", "/healthz")
    assert status == 200
    return client


def client_port(client: Client) -> int:
    """The local port of a Client's open connection."""
    conn = client._conn
    assert conn is not None
    assert conn.sock is not None
    return int(conn.sock.getsockname()[1])


def clients_on_every_worker(
    server: ServeProcess, pids: list[int], per_worker: int = 1, most: int = 40
) -> dict[int, list[Client]]:
    """Open keep-alive connections until every worker holds per_worker of them."""
    held: dict[int, list[Client]] = {pid: [] for pid in pids}
    spare: list[Client] = []
    for _ in range(most):
        if all(len(c) >= per_worker for c in held.values()):
            break
        client = connected_client(server)
        pid = owner(server, client_port(client), pids)
        if pid is not None and len(held[pid]) < per_worker:
            held[pid].append(client)
        else:
            spare.append(client)
    for client in spare:
        client.close()
    assert all(len(c) >= per_worker for c in held.values()), (
        f"connections never reached every worker: { {p: len(c) for p, c in held.items()} }"
    )
    return held


@dataclass
class Load:
    """Clients sending requests in a loop, each on its own keep-alive connection."""

    url: str
    clients: int = 6
    outcomes: list[tuple[float, int, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        """Start every client."""
        for number in range(self.clients):
            thread = threading.Thread(target=self._run, args=(number,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, number: int) -> None:
        client = Client(self.url, timeout=30)
        sent = 0
        while not self._stop.is_set():
            sent += 1
            key = f"load-{number}-{sent}"
            try:
                if sent % 2:
                    status, _, _ = client.request(
                        "PUT", f"/v1/metadata/{key}", {"value": key}
                    )
                    outcome: Any = key
                else:
                    status, _, _ = client.request("GET", "/v1/metadata/seed")
                    outcome = None
            except (OSError, http.client.HTTPException) as ex:  # its worker died
                self.outcomes.append((time.monotonic(), 0, type(ex).__name__))
                time.sleep(0.01)
                continue
            self.outcomes.append((time.monotonic(), status, outcome))
        client.close()

    def stop(self) -> list[tuple[float, int, Any]]:
        """Stop every client; (time, status or 0 for a connection error, key)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self.outcomes
