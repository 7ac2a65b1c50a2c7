"""What the event stream's reader asks of an engine: settled events, and changes.

One reader per process (the stream thread, service/events/) follows the
events table in id order and hands each event to the streams it holds.
Two things differ per engine:

- when an id can be trusted not to be followed by a smaller one
  committing later (EventTail): SQLite's writers take turns, so every
  committed id is final at once; PostgreSQL hands ids out at insert,
  not at commit, so its tail holds back behind a gap until every
  transaction that could still fill it has ended;
- how the reader learns that something was committed by another process
  (ChangeWatch): SQLite's PRAGMA data_version, PostgreSQL's LISTEN on a
  direct connection, or polling behind a transaction pooler.
"""

from __future__ import annotations

from typing import Any, Protocol

# (id, conversation_id or None, kind, data, created_at as the driver gives it)
EventRow = tuple[int, int | None, str, str, Any]
NOTIFY_CHANNEL = "service_events"


class EventTail(Protocol):
    """Reads the events table in id order, as far as it is settled."""

    def start(self, orm_db: Any) -> int | None:
        """The newest settled id to start after, or None while one is not known.

        Call again (after waiting a little) until it answers.
        """

    def read(self, orm_db: Any, cursor: int, limit: int) -> tuple[list[EventRow], bool]:
        """Settled events after cursor, in id order (at most limit).

        The flag says a gap is waiting to settle: read again soon.
        """


class ChangeWatch(Protocol):
    """Tells the reader that another connection may have committed events."""

    def fileno(self) -> int | None:
        """A descriptor that becomes readable on a notification, or None (poll)."""

    def changed(self) -> bool:
        """Whether anything may have changed since the last call (consumes it)."""

    def close(self) -> None:
        """Release the watch's connection."""
