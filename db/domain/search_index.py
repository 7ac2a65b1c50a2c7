"""The search index: a message's terms (db/domain/tokens.py) in search_terms.

Written in Python in the message's own write transaction, so both engines
hold exactly the same terms and a search never sees a deleted message
(search_terms rows go with their message: ON DELETE CASCADE, and
delete() below before Pony's own cascade loads them). Raw SQL through
Pony's public db.execute: one multi-row INSERT per message instead of one
entity (and one statement) per term, measured on the posting hot path.
"""

from __future__ import annotations

from pony import orm

from db.domain.tokens import index_terms

# The term of a message without any word: whitespace never is a word, so
# no query finds it, and "is this message indexed" stays one index lookup.
NO_WORDS = " "
# Rows per INSERT: far below either engine's limit on bound parameters.
_ROWS_PER_INSERT = 400
BACKFILL_BATCH = 500


def terms_of(body: str) -> list[str]:
    """The terms search_terms holds for a message body."""
    return index_terms(body).split() or [NO_WORDS]


def write(
    orm_db: orm.Database, conversation_id: int, message_id: int, body: str
) -> None:
    """Index one message (inside its write transaction)."""
    terms = terms_of(body)
    for start in range(0, len(terms), _ROWS_PER_INSERT):
        chunk = terms[start : start + _ROWS_PER_INSERT]
        params: dict[str, object] = {"c": conversation_id, "m": message_id}
        values = []
        for i, term in enumerate(chunk):
            params[f"t{i}"] = term
            values.append(f"($c, $t{i}, $m)")
        # ON CONFLICT: two processes back-filling at once index a message twice.
        orm_db.execute(
            "INSERT INTO search_terms (conversation_id, term, message_id) VALUES "
            + ", ".join(values)
            + " ON CONFLICT DO NOTHING",
            params,
        )


def delete(orm_db: orm.Database, message_id: int) -> None:
    """Drop a message's terms (before the message itself is deleted)."""
    orm_db.execute("DELETE FROM search_terms WHERE message_id = $m", {"m": message_id})


def unindexed(orm_db: orm.Database, limit: int) -> list[tuple[int, int, str]]:
    """Up to limit messages without terms yet: (id, conversation id, body)."""
    rows = orm_db.select(
        "SELECT m.id, m.conversation_id, m.body FROM messages m "
        "WHERE NOT EXISTS (SELECT 1 FROM search_terms t WHERE t.message_id = m.id) "
        "ORDER BY m.id LIMIT $limit",
        {"limit": limit},
    )
    return [(int(r[0]), int(r[1]), str(r[2])) for r in rows]
