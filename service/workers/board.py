"""The workers' board: which worker is starting, ready or gone, in shared memory.

The supervisor makes it before the first fork, so every worker (and every
worker it forks later to replace one) sees the same bytes: one per worker.
The supervisor marks a worker STARTING when it forks it and DOWN when it
reaps it; the worker marks itself READY once it serves. /readyz reads it,
whichever worker answers. One byte per slot: a write is never torn.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

DOWN = 0
STARTING = 1
READY = 2


@dataclass(frozen=True)
class Readiness:
    """How many workers serve, of how many configured."""

    ready: int
    configured: int

    @property
    def complete(self) -> bool:
        """Every configured worker serves."""
        return self.ready == self.configured


class Board:
    """One state byte per worker slot, shared by the supervisor and its forks."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a board needs at least one worker")
        self._size = workers
        # MAP_SHARED | MAP_ANONYMOUS: the same page in every fork.
        self._memory = mmap.mmap(-1, mmap.PAGESIZE)

    @property
    def size(self) -> int:
        """How many worker slots there are."""
        return self._size

    def mark(self, slot: int, state: int) -> None:
        """Set one worker's state (DOWN, STARTING, READY)."""
        if not 0 <= slot < self._size:
            raise IndexError(slot)
        self._memory[slot] = state

    def state(self, slot: int) -> int:
        """One worker's state."""
        if not 0 <= slot < self._size:
            raise IndexError(slot)
        return self._memory[slot]

    def readiness(self) -> Readiness:
        """How many workers are READY now."""
        states = self._memory[: self._size]
        return Readiness(states.count(READY), self._size)
