"""Database engines: what differs between SQLite and PostgreSQL lives here.

Domain modules (metadata, users, conversations, messages, search) speak
Pony and never name an engine; they ask their Dialect for the few things
that differ ("serialise writers of this key", "search these words").
db.database picks the Dialect for the target it opens.
"""

from __future__ import annotations

from typing import Any, Protocol

Row = tuple[Any, ...]


class Dialect(Protocol):
    """The engine-specific operations the domain code needs."""

    name: str

    def lock_key(self, orm_db: Any, *key: object) -> None:
        """Make concurrent writers of this logical key take turns.

        For read-modify-write on rows that may not exist yet (an upsert):
        row locks cannot cover a row nobody has inserted. Call inside the
        write transaction; held until it ends.
        """

    def search(
        self, orm_db: Any, user_id: int, terms: list[str], limit: int
    ) -> list[Row]:
        """Messages of the user's conversations containing every term, best first.

        Rows are (message id, conversation id, author handle, created_at as
        stored, snippet), the snippet's matches between SNIPPET_OPEN and
        SNIPPET_CLOSE and its text otherwise raw (the caller escapes it).
        """


# Around matched terms in a snippet: control characters, which message
# bodies may not contain, so the HTTP layer can escape the text and only
# then turn these into markup.
SNIPPET_OPEN = "\x02"
SNIPPET_CLOSE = "\x03"
SNIPPET_WORDS = 12
