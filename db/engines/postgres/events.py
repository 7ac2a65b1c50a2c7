"""The event reader on PostgreSQL: settle gaps, then LISTEN (or poll).

A BIGSERIAL id is handed out when a row is inserted, not when its
transaction commits: writer A takes id 10, writer B id 11, B commits, A
is still running. A reader that delivered 11 and resumed after it would
skip 10 forever. So the reader holds back at a gap (10 missing while 11
is visible) until it knows the gap can no longer fill:

- every event writer takes its transaction id before its event's id
  (Dialect.before_event), and holds a lock on the events table from the
  INSERT until it ends;
- so whoever holds a missing id below a visible one was in progress when
  the reader's statement took its snapshot (the snapshot's xip list), and
  still holds that lock: the gap's blockers are xip ∩ the transactions
  locking the events table (pg_locks), computed once per gap;
- once none of them is running any more, a read with a later snapshot
  sees every id they committed; what is still missing up to the newest
  id seen then was rolled back, and is skipped for good.

Only event writers block: a long transaction of anything else on the
server never holds the stream back. Nothing here uses session state,
so it works through a transaction-pooling pgbouncer (each statement is
its own transaction). Writers never wait for each other on account of
events: the alternative, one advisory lock that serialises every
event-writing transaction until its commit, costs writers what
docs/events.md measures.

Notifications: writers pg_notify() in their transaction when listeners
are configured; LISTEN needs a session, so it runs on a direct
connection of its own (SERVICE_EVENTS_LISTEN_URL, never the pooler).
Without one the reader polls.
"""

from __future__ import annotations

import select
from typing import Any

import psycopg2
from psycopg2 import extensions

from db.engines.base.events import NOTIFY_CHANNEL, EventRow

_READ = (
    "SELECT id, conversation_id, kind, data, created_at, "
    "pg_current_snapshot()::text FROM events "
    "WHERE id > $cursor ORDER BY id LIMIT $limit"
)
_NEWEST = "SELECT coalesce(max(id), 0), pg_current_snapshot()::text FROM events"
_RUNNING = "SELECT pg_current_snapshot()::text"
# The transactions in progress that lock the events table: those that
# inserted into it (or are inserting). xid8 against pg_locks' 32-bit xid.
_WRITERS = (
    "SELECT DISTINCT l.transactionid::text FROM pg_locks r "
    "JOIN pg_locks l ON l.virtualtransaction = r.virtualtransaction "
    "AND l.locktype = 'transactionid' "
    "WHERE r.locktype = 'relation' AND r.relation = 'events'::regclass "
    "AND r.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def in_progress(snapshot: str) -> set[int]:
    """The xids in progress in a pg_snapshot's text form (xmin:xmax:xip,...)."""
    _xmin, _xmax, xip = snapshot.split(":")
    return {int(x) for x in xip.split(",") if x}


class PostgresTail:
    """Events in id order, held back at a gap until it has settled."""

    def __init__(self) -> None:
        # Ids up to this that are still missing will stay missing.
        self._settled = 0
        # A gap seen: the newest id seen then, and who could still fill it.
        self._pending: int | None = None
        self._blockers: set[int] = set()

    def _blockers_of(self, orm_db: Any, snapshot: str) -> set[int]:
        """Of the snapshot's transactions in progress, those writing events."""
        running = in_progress(snapshot)
        if not running:
            return set()
        writers = {int(x) for x in orm_db.select(_WRITERS)}
        # pg_locks shows 32-bit xids; the snapshot, 64-bit ones with the epoch.
        return {x for x in running if x & 0xFFFFFFFF in writers}

    def _settle(self, orm_db: Any) -> bool:
        """Settle the pending gap once its blockers ended; True when none is left."""
        if self._pending is None:
            return True
        if self._blockers:
            snapshot = orm_db.select(_RUNNING)[0]
            self._blockers &= in_progress(snapshot)
        if self._blockers:
            return False
        # Every blocker has ended: a snapshot taken from now on sees all they
        # committed, so what it does not see up to _pending never will.
        self._settled = max(self._settled, self._pending)
        self._pending = None
        return True

    def start(self, orm_db: Any) -> int | None:
        """The newest id, once every event writer in flight when it was read ended."""
        if self._pending is None:
            newest, snapshot = orm_db.select(_NEWEST)[0]
            self._pending = int(newest)
            self._blockers = self._blockers_of(orm_db, snapshot)
        start = self._pending
        return start if self._settle(orm_db) else None

    def read(self, orm_db: Any, cursor: int, limit: int) -> tuple[list[EventRow], bool]:
        """Events after cursor up to the first gap that may still fill."""
        self._settle(orm_db)
        rows = orm_db.select(_READ, {"cursor": cursor, "limit": limit})
        settled: list[EventRow] = []
        expected = cursor + 1
        for row in rows:
            event_id = row[0]
            if event_id != expected and event_id - 1 > self._settled:
                if self._pending is None:
                    self._pending = rows[-1][0]
                    self._blockers = self._blockers_of(orm_db, row[5])
                return settled, True
            settled.append(tuple(row[:5]))
            expected = event_id + 1
        return settled, self._pending is not None


class PollWatch:
    """No notifications (behind a transaction pooler): every poll may have news."""

    def fileno(self) -> int | None:
        """None: the reader polls."""
        return None

    def changed(self) -> bool:
        """Always: only a read can tell."""
        return True

    def close(self) -> None:
        """Nothing to release."""


class ListenWatch:
    """LISTEN on a direct connection of its own; readable when a writer committed."""

    def __init__(self, url: str) -> None:
        self._con = psycopg2.connect(url, application_name="service-foundation events")
        self._con.set_isolation_level(extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with self._con.cursor() as cur:
            cur.execute(f"LISTEN {NOTIFY_CHANNEL}")

    def fileno(self) -> int | None:
        """The connection's socket: readable when a notification arrived."""
        return int(self._con.fileno())

    def changed(self) -> bool:
        """Whether notifications arrived (all of them consumed).

        Raises psycopg2.Error when the connection is lost; the reader
        then reconnects and reads everything after its position.
        """
        ready, _, _ = select.select([self._con], [], [], 0)
        if ready:
            self._con.poll()
        got = bool(self._con.notifies)
        self._con.notifies.clear()
        return got

    def close(self) -> None:
        """Close the connection (UNLISTEN with it)."""
        self._con.close()
