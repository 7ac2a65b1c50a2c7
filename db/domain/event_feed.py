"""Reading events back: the stream thread's queries, and the retention window.

The stream thread (service/events/) follows the whole table through the
engine's tail (settled events in id order), asks who receives each new
event (recipients: the membership periods that cover it), and serves a
resuming stream its own backlog (backlog: the events of every period of
that user, after its Last-Event-ID). Membership is judged at the event's
id, so a stream resuming hours later gets exactly what it would have got
had it never left (db/domain/events.py).

The retention window removes the oldest events (prune) and records the
newest id it removed (pruned_through): a stream resuming from an id
below that has missed events and is told to refetch (a reset).

Raw rows (db.select): these are read-only paths run per batch of events,
where entities would cost Pony several times the query.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from pony import orm

from db.domain.records import EventRecord
from db.engines.base.events import EventRow, EventTail
from db.engines.base.operations import Dialect

_RECIPIENTS = (
    "SELECT e.id, p.user_id FROM events e "
    "JOIN membership_periods p ON p.conversation_id = e.conversation_id "
    "AND p.since_event <= e.id AND (p.until_event IS NULL OR p.until_event >= e.id) "
    "WHERE e.id > $after AND e.id <= $upto"
)
_BACKLOG = (
    "SELECT e.id, e.conversation_id, e.kind, e.data, e.created_at "
    "FROM membership_periods p "
    "JOIN events e ON e.conversation_id = p.conversation_id "
    "AND e.id >= p.since_event AND (p.until_event IS NULL OR e.id <= p.until_event) "
    "WHERE p.user_id = $user_id AND (p.until_event IS NULL OR p.until_event > $after) "
    "AND e.id > $after AND e.id <= $upto ORDER BY e.id LIMIT $limit"
)


class EventFeed:
    """The events table as the stream thread reads it; records only."""

    def __init__(self, orm_db: orm.Database, dialect: Dialect, tail: EventTail) -> None:
        self._db = orm_db
        self._dialect = dialect
        self._tail = tail

    def _records(self, rows: list[EventRow]) -> list[EventRecord]:
        timestamp = self._dialect.timestamp
        return [EventRecord(r[0], r[1], r[2], r[3], timestamp(r[4])) for r in rows]

    def start(self) -> int | None:
        """The position a new reader starts after, or None until it is settled."""
        return self._tail.start(self._db)

    def read(self, cursor: int, limit: int) -> tuple[list[EventRecord], bool]:
        """Settled events after cursor; and whether to read again soon (a gap)."""
        rows, waiting = self._tail.read(self._db, cursor, limit)
        return self._records(rows), waiting

    def recipients(self, after: int, upto: int) -> dict[int, list[int]]:
        """Who was a member at each event in (after, upto]: event id -> user ids."""
        found: dict[int, list[int]] = {}
        for event_id, user_id in self._db.select(
            _RECIPIENTS, {"after": after, "upto": upto}
        ):
            found.setdefault(event_id, []).append(user_id)
        return found

    def backlog(
        self, user_id: int, after: int, upto: int, limit: int
    ) -> list[EventRecord]:
        """The user's events in (after, upto], as a member when each happened."""
        rows = self._db.select(
            _BACKLOG,
            {"user_id": user_id, "after": after, "upto": upto, "limit": limit},
        )
        return self._records([tuple(r) for r in rows])

    def pruned_through(self) -> int:
        """The newest id the retention window removed (0: none yet)."""
        rows = self._db.select("SELECT pruned_through FROM event_retention")
        return int(rows[0]) if rows else 0

    def newest(self) -> int:
        """The newest id this database ever kept (0: none)."""
        rows = self._db.select("SELECT max(id) FROM events")
        newest = int(rows[0] or 0) if rows else 0
        return max(newest, self.pruned_through())

    def prune(self, retention: timedelta, batch: int) -> int:
        """Remove the oldest events older than retention, at most batch of them.

        Older by the database's clock, which stamped them (every replica
        judges by the same one).

        Call inside a write transaction. Only a prefix of ids goes, so
        every id at or below pruned_through is gone and every one above
        it is kept; closed membership periods go with their events.
        Returns how many events were removed.
        """
        rows = self._db.select(
            "SELECT id, created_at FROM events ORDER BY id LIMIT $batch",
            {"batch": batch},
        )
        stamp = self._dialect.timestamp
        cutoff = self._dialect.now(self._db).replace(tzinfo=UTC) - retention
        upto = 0
        for event_id, created_at in rows:
            if stamp(created_at) >= cutoff:
                break
            upto = event_id
        if not upto:
            return 0
        removed = self._db.execute(
            "DELETE FROM events WHERE id <= $upto", {"upto": upto}
        ).rowcount
        self._db.execute(
            "DELETE FROM membership_periods WHERE until_event <= $upto",
            {"upto": upto},
        )
        # The row is made at the first pruning (the migration leaves the
        # table empty); it only ever grows, whoever prunes at the same time.
        self._db.execute(
            "INSERT INTO event_retention (id, pruned_through) VALUES (1, $upto) "
            "ON CONFLICT (id) DO UPDATE SET pruned_through = excluded.pruned_through "
            "WHERE event_retention.pruned_through < excluded.pruned_through",
            {"upto": upto},
        )
        return int(removed)

    def holds_token(self, token_id: int) -> bool:
        """Whether the token is still unrevoked (a stream's check when it opens)."""
        rows = self._db.select(
            "SELECT 1 FROM api_tokens WHERE id = $token_id AND revoked_at IS NULL",
            {"token_id": token_id},
        )
        return bool(rows)
