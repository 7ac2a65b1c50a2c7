"""How many searches an API token may start: a rate shared by every process.

The generic cell rate algorithm (GCRA): each token has one row holding
the moment its next search is due (search_quotas.due_at, seconds since
the epoch on the database's clock, so hosts whose clocks disagree still
share one limit). A search at `now` is allowed when due_at - now is at
most the tolerance (a full minute's worth of searches at once); it moves
due_at one period (60 s / rate) later. Refused searches write nothing:
a read settles them, so a flood of refused searches takes no write lock.

An allowed search is counted in its own short write transaction on a
worker thread of this store, committed before the search runs: the
request's own db_session stays a read (a write there would hold the
write lock, on SQLite the whole file's, for the whole search). The check
that guards the write is made again inside it, after the lock.
"""

from __future__ import annotations

import concurrent.futures
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from pony import orm

from db.engines.base.operations import Dialect

MINUTE = 60.0


class SearchQuota:
    """Counts each token's searches against rate per minute."""

    def __init__(
        self,
        orm_db: orm.Database,
        entities: dict[str, Any],
        dialect: Dialect,
        writing: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self._db = orm_db
        self._quota = entities["SearchQuota"]
        self._dialect = dialect
        self._writing = writing
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="search-quota"
        )

    def take(self, token_id: int, rate: int) -> int | None:
        """Count one search of token_id (inside a db_session); None, or seconds to wait.

        The wait is rounded up to whole seconds (a Retry-After value).
        """
        rows = self._db.select(
            "SELECT due_at FROM search_quotas WHERE token_id = $token_id",
            {"token_id": token_id},
        )
        if rows:
            wait = refused_for(float(rows[0]), self._dialect.clock(self._db), rate)
            if wait is not None:
                return wait
        return self._pool.submit(self._count, token_id, rate).result()

    def _count(self, token_id: int, rate: int) -> int | None:
        with self._writing():
            # Concurrent first searches of one token insert one row.
            self._dialect.lock_key(self._db, "search_quota", token_id)
            now = self._dialect.clock(self._db)
            quota = self._quota.get_for_update(token=token_id)
            due_at = quota.due_at if quota is not None else now
            wait = refused_for(due_at, now, rate)
            if wait is not None:
                return wait
            due = max(due_at, now) + MINUTE / rate
            if quota is None:
                self._quota(token=token_id, due_at=due)
            else:
                quota.due_at = due
        return None

    def close(self) -> None:
        """Stop the worker threads (before the connections are closed)."""
        self._pool.shutdown(wait=True)


def refused_for(due_at: float, now: float, rate: int) -> int | None:
    """None when a search at now is allowed, else whole seconds until it is."""
    tolerance = MINUTE - MINUTE / rate
    ahead = max(due_at, now) - now
    if ahead <= tolerance:
        return None
    return max(1, math.ceil(ahead - tolerance))
