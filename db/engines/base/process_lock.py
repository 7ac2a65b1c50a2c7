"""A write lock shared by forked processes: robust, bounded, first come first served.

SQLite lets one writer in at a time per file. Inside one process the write
gate (gates.SerialGate) queues writers on a threading.Lock; across worker
processes the only queue SQLite offers is its busy handler, which sleeps
in steps of up to 100 ms, answers nobody in order and can leave a writer
waiting out its whole busy_timeout while another process's writers hand
the lock among themselves. So the supervisor creates this lock before it
forks its workers, and every writer of every worker takes it first.

It is a glibc pthread mutex in anonymous shared memory (inherited by every
fork), set up through ctypes (the standard library has no process-shared
mutex with both a bounded wait and recovery from a dead owner):

- PTHREAD_PROCESS_SHARED: one mutex for all the forked processes;
- PTHREAD_MUTEX_ROBUST: when its owner dies holding it (kill -9, the OOM
  killer), the kernel hands it to the next waiter with EOWNERDEAD instead
  of leaving every writer waiting forever, as a POSIX semaphore (what
  multiprocessing.Lock is) would. The dead writer's transaction was rolled
  back by SQLite (its connection died with it), so the next one proceeds;
- PTHREAD_PRIO_INHERIT: the kernel's futex_lock_pi queue hands the mutex
  over at each unlock (the woken waiter owns it at once, so a releasing
  thread that loops straight back cannot barge ahead of it);
- PTHREAD_MUTEX_ERRORCHECK: a thread that takes it twice gets an error at
  once rather than waiting out the timeout on itself.

The wait is pthread_mutex_clocklock on CLOCK_MONOTONIC (glibc 2.30 and
later; kernels before 5.14 refuse it for priority-inheriting mutexes, and
then pthread_mutex_timedlock, on the wall clock, is used instead). A
mutex belongs to the thread that locked it: the thread that acquires
must release. Linux with glibc only: elsewhere UnsupportedError says so.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import sys
import time

_CLOCK_MONOTONIC = 1
_PTHREAD_PROCESS_SHARED = 1
_PTHREAD_MUTEX_ROBUST = 1
_PTHREAD_PRIO_INHERIT = 1
_PTHREAD_MUTEX_ERRORCHECK = 2
# Bigger than glibc's pthread_mutex_t (40 bytes on x86-64, 48 on arm64) and
# pthread_mutexattr_t (4), whatever the architecture.
_MUTEX_BYTES = 128
_ATTR_BYTES = 64


class UnsupportedError(Exception):
    """This platform has no robust process-shared mutex (Linux with glibc does)."""


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _libc() -> tuple[ctypes.CDLL, ctypes.PyDLL]:
    """libc twice: calls that block release the GIL (CDLL), the others keep it."""
    if not sys.platform.startswith("linux"):
        raise UnsupportedError(f"no robust process-shared mutex on {sys.platform}")
    try:
        blocking, quick = ctypes.CDLL(None), ctypes.PyDLL(None)
        for lib in (blocking, quick):
            for name in ("pthread_mutex_timedlock", "pthread_mutex_consistent"):
                getattr(lib, name)
    except (OSError, AttributeError) as ex:
        raise UnsupportedError(f"no robust process-shared mutex: {ex}") from ex
    for lib in (blocking, quick):
        for name in (
            "pthread_mutex_trylock",
            "pthread_mutex_unlock",
            "pthread_mutex_consistent",
        ):
            function = getattr(lib, name)
            function.argtypes = [ctypes.c_void_p]
            function.restype = ctypes.c_int
        timed = lib.pthread_mutex_timedlock
        timed.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Timespec)]
        timed.restype = ctypes.c_int
        clocked = getattr(lib, "pthread_mutex_clocklock", None)
        if clocked is not None:
            clocked.argtypes = [
                ctypes.c_void_p,
                ctypes.c_int,
                ctypes.POINTER(_Timespec),
            ]
            clocked.restype = ctypes.c_int
    return blocking, quick


def _check(result: int, call: str) -> None:
    if result != 0:
        raise OSError(result, f"{call}: {os.strerror(result)}")


class ProcessSharedLock:
    """One writer at a time across this process and every process it forks."""

    def __init__(self) -> None:
        self._blocking, self._quick = _libc()
        # MAP_SHARED | MAP_ANONYMOUS: the same memory in every fork.
        self._memory = mmap.mmap(-1, mmap.PAGESIZE)
        self._buffer = (ctypes.c_char * _MUTEX_BYTES).from_buffer(self._memory)
        self._mutex = ctypes.c_void_p(ctypes.addressof(self._buffer))
        self._monotonic = getattr(self._blocking, "pthread_mutex_clocklock", None)
        attr = ctypes.create_string_buffer(_ATTR_BYTES)
        lib = self._quick
        _check(lib.pthread_mutexattr_init(attr), "pthread_mutexattr_init")
        try:
            for call, value in (
                ("pthread_mutexattr_setpshared", _PTHREAD_PROCESS_SHARED),
                ("pthread_mutexattr_setrobust", _PTHREAD_MUTEX_ROBUST),
                ("pthread_mutexattr_setprotocol", _PTHREAD_PRIO_INHERIT),
                ("pthread_mutexattr_settype", _PTHREAD_MUTEX_ERRORCHECK),
            ):
                _check(getattr(lib, call)(attr, value), call)
            _check(lib.pthread_mutex_init(self._mutex, attr), "pthread_mutex_init")
        finally:
            lib.pthread_mutexattr_destroy(attr)

    def acquire(self, timeout: float) -> bool:
        """Take the lock within timeout seconds; False when the wait gave up."""
        result = self._quick.pthread_mutex_trylock(self._mutex)
        if result == errno.EBUSY:
            result = self._wait(timeout)
        if result == 0:
            return True
        if result == errno.ETIMEDOUT:
            return False
        if result == errno.EOWNERDEAD:
            # Its owner died holding it; what it guarded (an SQLite write
            # transaction) died with it. Mark it usable again, and own it.
            _check(
                self._quick.pthread_mutex_consistent(self._mutex),
                "pthread_mutex_consistent",
            )
            return True
        if result == errno.EDEADLK:
            raise RuntimeError("this thread already holds the write lock")
        raise OSError(result, f"pthread_mutex_lock: {os.strerror(result)}")

    def _wait(self, timeout: float) -> int:
        if self._monotonic is not None:
            result: int = self._monotonic(
                self._mutex,
                _CLOCK_MONOTONIC,
                ctypes.byref(_deadline(time.monotonic(), timeout)),
            )
            if result != errno.EINVAL:
                return result
            # A kernel without FUTEX_LOCK_PI2 (before 5.14): the wall clock.
            self._monotonic = None
        timed: int = self._blocking.pthread_mutex_timedlock(
            self._mutex, ctypes.byref(_deadline(time.time(), timeout))
        )
        return timed

    def release(self) -> None:
        """Let the next writer in (from the thread that acquired)."""
        _check(self._quick.pthread_mutex_unlock(self._mutex), "pthread_mutex_unlock")


def _deadline(now: float, timeout: float) -> _Timespec:
    seconds, fraction = divmod(now + max(timeout, 0.0), 1.0)
    return _Timespec(int(seconds), int(fraction * 1e9))
