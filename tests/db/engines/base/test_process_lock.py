"""The workers' write lock: exclusive, bounded, robust to a dead owner, across forks."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from db.engines.base.gates import SharedGate
from db.engines.base.process_lock import ProcessSharedLock
from db.errors import BusyError


def _fork(child: Callable[[], int]) -> int:
    """Run child in a forked process; its pid. The child exits with child()'s code."""
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            code = child()
        finally:
            os._exit(code)
    return pid


def _exit_code(pid: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError(f"process {pid} still running after {timeout} s")


def test_processes_take_turns_so_no_read_modify_write_is_lost(tmp_path: Path) -> None:
    """Four forked processes each add 1 to a file 200 times under the lock (read,
    pause, write): the file ends at 800, so no two were ever inside at once."""
    lock = ProcessSharedLock()
    counter = tmp_path / "counter"
    counter.write_bytes(struct.pack("q", 0))

    def add() -> int:
        for _ in range(200):
            assert lock.acquire(10)
            try:
                (value,) = struct.unpack("q", counter.read_bytes())
                time.sleep(0)  # let another process try to barge in
                counter.write_bytes(struct.pack("q", value + 1))
            finally:
                lock.release()
        return 0

    pids = [_fork(add) for _ in range(4)]
    assert [_exit_code(pid) for pid in pids] == [0] * 4
    assert struct.unpack("q", counter.read_bytes()) == (800,)


def test_a_wait_for_another_processes_lock_gives_up_after_the_timeout() -> None:
    """A child holds the lock: this process's acquire(0.3) returns False after about
    0.3 s, not sooner and not much later; once the child releases, it succeeds."""
    lock = ProcessSharedLock()
    read_end, write_end = os.pipe()
    release_r, release_w = os.pipe()

    def hold() -> int:
        assert lock.acquire(5)
        os.write(write_end, b"x")
        os.read(release_r, 1)
        lock.release()
        return 0

    pid = _fork(hold)
    try:
        assert os.read(read_end, 1) == b"x"
        started = time.monotonic()
        assert lock.acquire(0.3) is False
        waited = time.monotonic() - started
        assert 0.28 <= waited < 1.0, waited
        os.write(release_w, b"x")
        assert lock.acquire(5) is True
        lock.release()
    finally:
        os.write(release_w, b"x")
        assert _exit_code(pid) == 0
        for fd in (read_end, write_end, release_r, release_w):
            os.close(fd)


def test_a_lock_whose_owner_was_killed_goes_to_the_next_waiter_at_once() -> None:
    """A child takes the lock and dies holding it (kill -9): the next acquire gets it
    without waiting out its timeout, and the lock keeps working afterwards."""
    lock = ProcessSharedLock()
    read_end, write_end = os.pipe()

    def hold_forever() -> int:
        assert lock.acquire(5)
        os.write(write_end, b"x")
        time.sleep(60)
        return 0

    pid = _fork(hold_forever)
    assert os.read(read_end, 1) == b"x"
    os.kill(pid, 9)
    assert _exit_code(pid) == -9
    started = time.monotonic()
    assert lock.acquire(5) is True
    assert time.monotonic() - started < 1.0
    lock.release()
    assert lock.acquire(0.1) is True
    lock.release()
    os.close(read_end)
    os.close(write_end)


def test_a_thread_taking_the_lock_twice_is_told_at_once() -> None:
    """The same thread acquiring again raises instead of waiting out the timeout."""
    lock = ProcessSharedLock()
    assert lock.acquire(1)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="already holds"):
        lock.acquire(5)
    assert time.monotonic() - started < 1.0
    lock.release()


def test_the_shared_gate_refuses_with_busy_after_its_timeout_and_reports_waits() -> (
    None
):
    """SharedGate over a lock another process holds: BusyError naming the timeout,
    and its observer sees the wait (about the timeout) and that it gave up."""
    lock = ProcessSharedLock()
    seen: list[tuple[float, bool]] = []
    gate = SharedGate(0.2, lock, observe=lambda waited, got: seen.append((waited, got)))
    read_end, write_end = os.pipe()
    release_r, release_w = os.pipe()

    def hold() -> int:
        assert lock.acquire(5)
        os.write(write_end, b"x")
        os.read(release_r, 1)
        lock.release()
        return 0

    pid = _fork(hold)
    try:
        assert os.read(read_end, 1) == b"x"
        with pytest.raises(BusyError, match=r"0\.2 s"):
            gate.acquire()
    finally:
        os.write(release_w, b"x")
        assert _exit_code(pid) == 0
    gate.acquire()
    gate.release()
    [(waited, got), (_, got_later)] = seen
    assert got is False
    assert 0.18 <= waited < 1.0
    assert got_later is True
    for fd in (read_end, write_end, release_r, release_w):
        os.close(fd)
