"""What domain code asks of an engine: the few things that differ.

Domain modules (metadata, users, conversations, messages, search) speak
Pony and never name an engine; they ask their Dialect ("serialise
writers of this key", "the database's clock", "stop this read after so long",
"this raw timestamp as a datetime"). Values cross this interface
converted: a store never parses what one driver returns.

One clock orders what the service stores: every stamp a store writes
comes from now() or lock_key(), the database's clock (on PostgreSQL the
server's, shared by every host; on SQLite the machine's, which every
process on the file shares), never from one host's own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, Protocol

Row = tuple[Any, ...]

# Around matched terms in a snippet: control characters, which message
# bodies may not contain, so the HTTP layer can escape the text and only
# then turn these into markup.
SNIPPET_OPEN = "\x02"
SNIPPET_CLOSE = "\x03"


class Dialect(Protocol):
    """The engine-specific operations the domain code needs."""

    @property
    def name(self) -> Literal["sqlite", "postgres"]:
        """Which engine."""

    @property
    def guard_lock(self) -> str:
        """The clause that ends a SELECT of a row a write depends on.

        Inside a write transaction, after the write's own lock: on
        PostgreSQL " FOR KEY SHARE", so the read waits for a transaction
        that locked the row FOR UPDATE (a revocation) or deletes it, and
        such a writer waits for this transaction in turn; on SQLite
        nothing, BEGIN IMMEDIATE already made writers take turns.
        """

    def lock_key(self, orm_db: Any, *key: object) -> datetime:
        """Make concurrent writers of this logical key take turns; the time then.

        For read-modify-write on rows that may not exist yet (an upsert):
        row locks cannot cover a row nobody has inserted. Call inside the
        write transaction; held until it ends. Returns the database's
        clock read once the lock is held (naive UTC, as now()): the stamp
        for what the holder writes, so stamps follow the order in which
        holders take turns, at no extra round trip.
        """

    def now(self, orm_db: Any) -> datetime:
        """The database's clock as naive UTC (what entities store).

        For a stamp a write stores where no lock_key() gave one. On
        PostgreSQL one round trip (clock_timestamp(), not the
        transaction's start, which may precede a lock wait).
        """

    def bounded_select(
        self, orm_db: Any, sql: str, params: dict[str, Any], seconds: float
    ) -> list[Row]:
        """orm_db.select(sql, params), stopped after seconds.

        BudgetExceededError when stopped (SQLite: a progress handler
        interrupts the statement; PostgreSQL: statement_timeout for that
        statement alone). Nothing holds a thread or a connection past it.
        """

    def clock(self, orm_db: Any) -> float:
        """Now, in seconds since the epoch, on the database's clock.

        PostgreSQL: the server's (every app host reads the same clock);
        SQLite: this machine's, the only one that opens the file.
        """

    def before_event(self, orm_db: Any, notify: bool) -> datetime:
        """Call in a write transaction right before it inserts an event; its stamp.

        PostgreSQL: the transaction takes its id (xid) first, which the
        reader relies on to settle gaps (db/engines/postgres/events.py),
        and NOTIFYs listeners at commit when notify. Returns the database's
        clock (naive UTC), as now() does.
        """

    def timestamp(self, raw: Any) -> datetime:
        """A timestamp column of a raw row (db.select) as an aware UTC datetime."""

    def timestamp_param(self, moment: datetime) -> Any:
        """An aware datetime as a raw query's parameter, to compare with a column."""


def timestamp_text(moment: datetime) -> str:
    """An aware datetime as naive UTC ISO 8601 text, to the microsecond.

    How Pony writes a datetime as text (SQLite stores it so), and the form
    a conversation cursor holds.
    """
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # Positional arguments and slicing off "+00:00": half the time of
    # replace(tzinfo=None).isoformat(sep=..., timespec=...).
    return moment.isoformat(" ", "microseconds")[:-6]


def parse_timestamp(text: str) -> datetime:
    """Timestamp text (naive UTC, as timestamp_text writes it) as an aware datetime."""
    try:
        moment = datetime.fromisoformat(text + "+00:00")
    except ValueError:  # not written by us: an offset or a 'Z' of its own
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:  # a bare date ignores the appended offset
        return moment.replace(tzinfo=UTC)
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)
