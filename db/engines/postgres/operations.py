"""What the domain code asks of PostgreSQL: advisory locks, the clock, search."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from db.engines.base.events import NOTIFY_CHANNEL
from db.engines.base.operations import SNIPPET_CLOSE, SNIPPET_OPEN, SNIPPET_WORDS, Row
from db.engines.postgres.locks import key_number

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


def tsquery_sql(terms: list[str]) -> tuple[str, dict[str, str]]:
    """Every term as a phrase, all required: phraseto_tsquery(t1) && ...

    A term is text for phraseto_tsquery, never tsquery syntax, so no user
    input is parsed as an operator. Each chunk of the query must appear
    as the same words in order, as an FTS5 phrase does.
    """
    parts, params = [], {}
    for i, term in enumerate(terms):
        parts.append(f"phraseto_tsquery('simple', translate($t{i}, '<>', '  '))")
        params[f"t{i}"] = term
    return " && ".join(parts), params


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

    def search(
        self, orm_db: Any, user_id: int, terms: list[str], limit: int
    ) -> list[Row]:
        """The body_tsv GIN index, the user's memberships, ranked; ts_headline snippets.

        The default parser drops anything shaped like an HTML tag from both
        the index and the headline; '<' and '>' travel as \\x04 and \\x05
        (which bodies may not contain) and come back in Python.
        """
        query, params = tsquery_sql(terms)
        marks = f"StartSel={SNIPPET_OPEN}, StopSel={SNIPPET_CLOSE}"
        # A body of at most SNIPPET_WORDS words is its own snippet (as FTS5's
        # snippet() is); a longer one gets the best fragment of that size.
        whole = f"{marks}, HighlightAll=true"
        fragment = (
            f"{marks}, MaxWords={SNIPPET_WORDS}, "
            f"MinWords={max(1, SNIPPET_WORDS // 2)}, ShortWord=0, MaxFragments=1"
        )
        rows = orm_db.select(
            "SELECT hit.id, hit.conversation_id, u.handle, hit.created_at, "
            "ts_headline('simple', translate(hit.body, '<>', E'\\x04\\x05'), "
            "hit.query, CASE WHEN cardinality(regexp_split_to_array("
            "btrim(hit.body), E'\\s+')) <= $words THEN $whole ELSE $fragment END) "
            "FROM (SELECT m.id, m.conversation_id, "
            "m.author_id, m.body, m.created_at, q.query, "
            "ts_rank(m.body_tsv, q.query) AS rank "
            f"FROM (SELECT {query} AS query) q "
            "JOIN messages m ON m.body_tsv @@ q.query "
            "JOIN memberships mb ON mb.conversation_id = m.conversation_id "
            "AND mb.user_id = $user_id "
            "ORDER BY rank DESC, m.id DESC LIMIT $limit) hit "
            "JOIN users u ON u.id = hit.author_id "
            "ORDER BY hit.rank DESC, hit.id DESC",
            {
                **params,
                "words": SNIPPET_WORDS,
                "whole": whole,
                "fragment": fragment,
                "user_id": user_id,
                "limit": limit,
            },
        )
        return [
            (
                *row[:3],
                timestamp(row[3]),
                row[4].replace("\x04", "<").replace("\x05", ">"),
            )
            for row in rows
        ]

    # Staticmethods: called per raw timestamp, so no bound-method lookup.
    timestamp = staticmethod(timestamp)

    @staticmethod
    def timestamp_param(moment: datetime) -> datetime:
        """moment as the naive UTC datetime a TIMESTAMP column compares with."""
        return moment.astimezone(UTC).replace(tzinfo=None)
