"""What the domain code asks of PostgreSQL: advisory locks, tsvector search."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from db.engines.base.events import NOTIFY_CHANNEL
from db.engines.base.operations import SNIPPET_CLOSE, SNIPPET_OPEN, SNIPPET_WORDS, Row
from db.engines.postgres.locks import key_number


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

    def lock_key(self, orm_db: Any, *key: object) -> None:
        """A transaction-level advisory lock on key: same-key writers take turns."""
        number = key_number(*key)
        orm_db.select("SELECT pg_advisory_xact_lock($number)", {"number": number})

    def before_event(self, orm_db: Any, notify: bool) -> None:
        """Take the transaction's id now, before the event's id; NOTIFY at commit.

        The reader settles a gap by waiting for the transactions in
        progress that lock the events table (db/engines/postgres/events.py):
        that needs every holder of an event id to have an xid by then,
        and an INSERT takes its id (nextval) before its xid. One round
        trip; pg_notify in it when some replica LISTENs.
        """
        if notify:
            orm_db.select(
                "SELECT pg_current_xact_id(), pg_notify($channel, '')",
                {"channel": NOTIFY_CHANNEL},
            )
        else:
            orm_db.select("SELECT pg_current_xact_id()")

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
