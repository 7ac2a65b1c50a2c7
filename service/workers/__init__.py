"""Worker processes: SERVICE_WORKERS waitress processes under one supervisor.

supervisor.py migrates and opens the database once, binds the listening
sockets once, then forks the workers (worker.py), each a whole `serve`
(its own waitress loop, threads and drain) on the inherited sockets; it
restarts the ones that die and drains them all on a stop signal.
board.py is the memory they share: which workers are ready, for /readyz.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = Path("/sys/fs/cgroup/cpu")


def _cgroup_limit() -> float | None:
    """CPUs the cgroup's quota allows (a container's --cpus), None when unlimited."""
    try:
        quota, period = _CGROUP_V2.read_text().split()[:2]
        if quota == "max":
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((_CGROUP_V1 / "cpu.cfs_quota_us").read_text())
        period_us = int((_CGROUP_V1 / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup quota."""
    affinity = getattr(os, "sched_getaffinity", None)  # not on macOS
    cores = len(affinity(0)) if affinity else (os.cpu_count() or 1)
    limit = _cgroup_limit()
    if limit is not None:
        cores = min(cores, math.ceil(limit))
    return max(1, cores)


def worker_count(setting: int | str) -> int:
    """SERVICE_WORKERS as a number: itself, or the usable cores for auto."""
    return usable_cores() if setting == "auto" else int(setting)
