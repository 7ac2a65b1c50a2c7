"""CPU and memory of a server's whole process tree (a supervisor and its workers)."""

from __future__ import annotations

import os

from bench.procs import cpu_seconds, proc_status


def process_tree(pid: int) -> list[int]:
    """pid and every live descendant (a supervisor's workers)."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    pending += [int(child) for child in fh.read().split()]
            except OSError:
                continue
    return tree


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of pid and its live descendants (every worker of a supervisor)."""
    own = cpu_seconds(pid)
    if own is None:
        return None
    return own + sum(cpu_seconds(child) or 0.0 for child in process_tree(pid)[1:])


def tree_status(pid: int, field_name: str) -> int | None:
    """A kB field of /proc status summed over pid and its descendants."""
    own = proc_status(pid, field_name)
    if own is None:
        return None
    return own + sum(proc_status(c, field_name) or 0 for c in process_tree(pid)[1:])
