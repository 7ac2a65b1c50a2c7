"""What the stream thread asks the database, each in a short session of its own.

The thread's position (cursor) is the newest settled event id it has
handed to its live streams. New events come from the engine's tail, only
as far as they are settled (db/engines/base/events.py); their recipients
from the membership periods; a stream that resumes from an older id gets
its own backlog up to the cursor, then follows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from db.database import Database
from db.domain.records import EventRecord

# Events read per query: a batch fanned out at once, a page of backlog.
BATCH = 500
PAGE = 200
# Events removed per write transaction, and transactions per pruning round.
PRUNE_BATCH = 1000
PRUNE_ROUNDS = 20


@dataclass(frozen=True)
class Resume:
    """Where a stream with a Last-Event-ID starts: after an id, or with a reset."""

    after: int | None
    reset: str | None


class Following:
    """The stream thread's reads and its one write (the retention window)."""

    def __init__(self, database: Database, retention: timedelta) -> None:
        self._database = database
        self._feed = database.feed
        self._retention = retention

    def start(self) -> int | None:
        """The cursor to start from, or None until it is settled."""
        with self._database.reading():
            return self._feed.start()

    def read(self, cursor: int) -> tuple[list[EventRecord], dict[int, list[int]], bool]:
        """Settled events after cursor, their recipients, and whether a gap waits."""
        with self._database.reading():
            events, waiting = self._feed.read(cursor, BATCH)
            if not events:
                return [], {}, waiting
            recipients = self._feed.recipients(cursor, events[-1].id)
        return events, recipients, waiting

    def backlog(
        self, user_id: int, after: int, upto: int
    ) -> tuple[list[EventRecord], bool]:
        """A page of the user's events in (after, upto]; False when some are gone.

        Checked after the page is read: pruning only ever raises
        pruned_through, in the transaction that removes the events, so a
        value not above after means the page missed nothing.
        """
        with self._database.reading():
            page = self._feed.backlog(user_id, after, upto, PAGE)
            complete = self._feed.pruned_through() <= after
        return page, complete

    def resume(self, last_event_id: str) -> Resume:
        """Where a stream resuming from last_event_id (as sent) starts."""
        if not (last_event_id.isascii() and last_event_id.isdigit()):
            return Resume(None, "unknown")
        after = int(last_event_id)
        with self._database.reading():
            newest = self._feed.newest()
            pruned = self._feed.pruned_through()
        if after > newest:
            return Resume(None, "unknown")  # another database's, or one restored
        if after < pruned:
            return Resume(None, "expired")
        return Resume(after, None)

    def valid_tokens(self, token_ids: set[int]) -> set[int]:
        """Those of token_ids still unrevoked."""
        with self._database.reading():
            return {t for t in token_ids if self._feed.holds_token(t)}

    def prune(self) -> int:
        """Remove events older than the retention window; how many went."""
        removed = 0
        for _ in range(PRUNE_ROUNDS):
            with self._database.writing():
                batch = self._feed.prune(self._retention, PRUNE_BATCH)
            removed += batch
            if batch < PRUNE_BATCH:
                break
        return removed
