"""The PostgreSQL seam: Pony's postgres provider, errors, locks, search."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from psycopg2 import extensions

from db.engines.base.engine import SNIPPET_CLOSE, SNIPPET_OPEN, SNIPPET_WORDS, Row
from db.errors import (
    BusyError,
    ConflictError,
    DatabaseError,
    StartupError,
    StorageError,
    StorageFullError,
)

APPLICATION_NAME = "service-foundation"

# SQLSTATE codes (https://www.postgresql.org/docs/current/errcodes-appendix.html)
_BUSY = frozenset(
    {
        "55P03",  # lock_not_available: lock_timeout passed
        "57014",  # query_canceled: statement_timeout passed
        "40001",  # serialization_failure: retry the transaction
        "40P01",  # deadlock_detected: retry the transaction
    }
)


def classify(error: BaseException) -> type[DatabaseError] | None:
    """What a psycopg2 error means for the caller, from its SQLSTATE.

    Integrity violations (class 23): a conflict with stored data. Lock and
    statement timeouts, serialization failures and deadlocks: busy, retry.
    Disk full: full. Insufficient resources, system and I/O errors, a lost
    or refused connection, a server shutting down: the machine failed.
    """
    code = getattr(error, "pgcode", None) or ""
    if code.startswith("23"):
        return ConflictError
    if code in _BUSY:
        return BusyError
    if code == "53100":
        return StorageFullError
    if code.startswith(("53", "58", "08", "57P", "XX")):
        return StorageError
    if not code and type(error).__name__ in ("OperationalError", "InterfaceError"):
        return StorageError  # no SQLSTATE: the connection itself failed
    return None


def connect_arguments(url: str, lock_timeout: float) -> dict[str, Any]:
    """psycopg2.connect() keywords for url, with the service's session settings.

    lock_timeout bounds every wait for a row or table lock (55P03 past it:
    503, as SQLite's busy_timeout does). The settings travel in the
    startup packet's `options`, after any the URL carries, so that Pony's
    DISCARD ALL on releasing a connection resets the session to them.
    """
    arguments: dict[str, Any] = extensions.parse_dsn(url)
    options = arguments.get("options", "")
    ours = f"-c lock_timeout={max(1, round(lock_timeout * 1000))}"
    arguments["options"] = f"{options} {ours}".strip()
    arguments.setdefault("application_name", APPLICATION_NAME)
    return arguments


def key_number(*key: object) -> int:
    """A signed 64-bit number for a logical key, for pg_advisory_xact_lock."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


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

    def lock_key(self, orm_db: Any, *key: object) -> None:
        """A transaction-level advisory lock on key: same-key writers take turns."""
        number = key_number(*key)
        orm_db.select("SELECT pg_advisory_xact_lock($number)", {"number": number})

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
            (*row[:4], row[4].replace("\x04", "<").replace("\x05", ">")) for row in rows
        ]


def check_capacity(orm_db: Any, needed: int) -> None:
    """StartupError unless the server can give the service needed connections.

    Pony keeps one connection per worker thread; a server that cannot give
    one to each would fail requests under load instead of at start.
    """
    rows = orm_db.select(
        "SELECT current_setting('max_connections')::int, "
        "current_setting('superuser_reserved_connections')::int, "
        "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
    )
    maximum, reserved, used = rows[0]
    free = maximum - reserved - used
    if needed > free:
        raise StartupError(
            f"PostgreSQL has room for {free} more connection(s) "
            f"(max_connections {maximum}, {reserved} reserved, {used} in use); "
            f"the service needs {needed} more (one per SERVICE_THREADS worker and "
            "one for recording token use): lower SERVICE_THREADS or raise "
            "max_connections"
        )
