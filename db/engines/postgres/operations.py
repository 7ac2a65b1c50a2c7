"""What the domain code asks of PostgreSQL: advisory locks, the clock, bounded reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from db.engines.base.events import NOTIFY_CHANNEL
from db.engines.base.operations import Row
from db.engines.postgres.locks import key_number
from db.errors import BudgetExceededError


def _canceled(ex: BaseException) -> bool:
    """Whether ex (or what it wraps) is query_canceled: the timeout passed."""
    seen: list[BaseException | None] = [ex]
    while seen:
        current = seen.pop()
        if current is None:
            continue
        if getattr(current, "pgcode", None) == "57014":
            return True
        seen += [getattr(current, "original_exc", None), current.__cause__]
    return False


# The server's clock once the lock is held: OFFSET 0 keeps the subquery (and
# its lock) from being merged into the outer query, so it runs first.
_LOCK_THEN_CLOCK = (
    "SELECT clock_timestamp() AT TIME ZONE 'UTC' "
    "FROM (SELECT pg_advisory_xact_lock($number) OFFSET 0) AS held"
)
_CLOCK = "SELECT clock_timestamp() AT TIME ZONE 'UTC'"


def timestamp(raw: Any) -> datetime:
    """A raw TIMESTAMP column (a naive UTC datetime) as an aware UTC datetime."""
    moment: datetime = raw
    return (
        moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    )


class PostgresDialect:
    """What the domain code asks of PostgreSQL."""

    name: Literal["postgres"] = "postgres"
    # Waits for a revocation's FOR UPDATE or a DELETE of the row, and makes
    # them wait; compatible with plain UPDATEs of other columns (token use).
    guard_lock: str = " FOR KEY SHARE"

    def lock_key(self, orm_db: Any, *key: object) -> datetime:
        """A transaction-level advisory lock on key, then the server's clock.

        Same-key writers take turns; one round trip for both.
        """
        number = key_number(*key)
        moment: datetime = orm_db.select(_LOCK_THEN_CLOCK, {"number": number})[0]
        return moment

    def now(self, orm_db: Any) -> datetime:
        """The server's clock, naive UTC (clock_timestamp(): one round trip)."""
        moment: datetime = orm_db.select(_CLOCK, {})[0]
        return moment

    def before_event(self, orm_db: Any, notify: bool) -> datetime:
        """Take the transaction's id now, before the event's id; the server's clock.

        The reader settles a gap by waiting for the transactions in
        progress that lock the events table (db/engines/postgres/events.py):
        that needs every holder of an event id to have an xid by then,
        and an INSERT takes its id (nextval) before its xid. One round
        trip, which also reads the clock the event is stamped with (one
        clock for every replica) and, when some replica LISTENs, calls
        pg_notify.
        """
        notify_sql = ", pg_notify($channel, '')" if notify else ""
        row = orm_db.select(
            "SELECT pg_current_xact_id(), clock_timestamp() AT TIME ZONE 'UTC'"
            + notify_sql,
            {"channel": NOTIFY_CHANNEL},
        )[0]
        moment: datetime = row[1]
        return moment

    def bounded_select(
        self, orm_db: Any, sql: str, params: dict[str, Any], seconds: float
    ) -> list[Row]:
        """orm_db.select under statement_timeout, set for this statement alone.

        set_config(..., is_local => true) and the SELECT travel as one simple
        query (psycopg2 binds parameters client-side): PostgreSQL runs them as
        one implicit transaction (or inside the session's own), so the
        setting ends with it and never stays on a pooled server session.
        The cursor holds the last statement's rows.
        """
        bounded = {**params, "budget_ms": str(max(1, int(seconds * 1000)))}
        try:
            rows: list[Row] = orm_db.select(
                f"SELECT set_config('statement_timeout', $budget_ms, true); {sql}",
                bounded,
            )
        except Exception as ex:
            if _canceled(ex):
                raise BudgetExceededError(
                    f"the statement took more than {seconds:.3g} s"
                ) from ex
            raise
        return rows

    def clock(self, orm_db: Any) -> float:
        """The server's clock: the same for every app host."""
        return float(orm_db.select("SELECT extract(epoch FROM clock_timestamp())")[0])

    # Staticmethods: called per raw timestamp, so no bound-method lookup.
    timestamp = staticmethod(timestamp)

    @staticmethod
    def timestamp_param(moment: datetime) -> datetime:
        """moment as the naive UTC datetime a TIMESTAMP column compares with."""
        return moment.astimezone(UTC).replace(tzinfo=None)
