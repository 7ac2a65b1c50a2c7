"""When each API token was last used, recorded off the request path.

A request must never write to record that its token was used: a read
would become a writer, queueing on the write lock (or holding a worker
while another process holds SQLite's). Requests note the use in memory;
a background thread writes the notes in one short write transaction
every FLUSH_INTERVAL seconds, through the same write gate as requests,
and Database.close() writes what is left. A token's last_used_at moves
at most once per TOUCH_INTERVAL and never backwards, whichever process
recorded the newer use. A kill -9 loses at most the last interval's
notes: bookkeeping, not data.

The stamps are the database's clock: a note keeps this process's
monotonic time, and the flush reads the database's clock once and dates
each use back from it by the time elapsed since, so a host whose own
clock is off neither moves a token's last use into the future (where
"never backwards" would pin it) nor back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from pony import orm

from db.domain.records import Caller
from db.errors import DatabaseError

# Its name from before db/domain/ existed, which log filters may know.
log = logging.getLogger("db.token_uses")

TOUCH_INTERVAL = timedelta(seconds=60)
FLUSH_INTERVAL = 5.0


class TokenUses:
    """Notes token uses in memory; writes them in batches."""

    def __init__(
        self,
        entities: dict[str, Any],
        writing: Callable[[], AbstractContextManager[None]],
        clock: Callable[[], datetime],
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        self._token = entities["ApiToken"]
        self._writing = writing
        self._clock = clock  # the database's, naive UTC, inside writing()
        self._interval = flush_interval
        self._pending: dict[int, float] = {}  # token id -> time.monotonic()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def note(self, caller: Caller) -> None:
        """Remember that caller's token was used now, if that is news."""
        moment = datetime.now(UTC)
        last = caller.last_used_at
        if last is not None and moment - last < TOUCH_INTERVAL:
            return
        with self._lock:
            if caller.token_id in self._pending:
                return  # noted already; the flush writes it
            self._pending[caller.token_id] = time.monotonic()
            if self._thread is None and not self._stopped.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="token-uses", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def pending(self) -> int:
        """How many uses wait to be written."""
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Write the noted uses now; returns how many tokens were updated.

        On a database error (busy, full disk) the notes are kept for the
        next flush and the error is logged, never raised.
        """
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            with self._writing():
                now, elapsed_from = self._clock(), time.monotonic()
                tokens = orm.select(t for t in self._token if t.id in list(batch))
                for token in tokens:
                    ago = max(0.0, elapsed_from - batch[token.id])
                    used = now - timedelta(seconds=ago)
                    if token.last_used_at is None or token.last_used_at < used:
                        token.last_used_at = used
        except DatabaseError as ex:
            log.warning("token uses not recorded yet (%d kept): %s", len(batch), ex)
            with self._lock:
                for token_id, moment in batch.items():
                    self._pending.setdefault(token_id, moment)
            return 0
        return len(batch)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stopped.wait(self._interval):
                return
            try:
                self.flush()
            except Exception:  # never let bookkeeping kill its thread
                log.exception("token uses: flush failed")

    def close(self) -> None:
        """Stop the background thread and write what is left."""
        self._stopped.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        self.flush()
