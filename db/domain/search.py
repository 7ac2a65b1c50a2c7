"""Full-text search over the messages of a user's conversations.

The engine's own index does the work (FTS5 on SQLite, a tsvector with a
GIN index on PostgreSQL), asked through the Dialect: Pony's query
language has no MATCH. Every word of the query is required and searched
as text, never parsed as an operator. A snippet's matches come between
SNIPPET_OPEN and SNIPPET_CLOSE, its text otherwise raw.
"""

from __future__ import annotations

import re

from pony import orm

from db.domain.records import SearchHit
from db.engines.base.operations import SNIPPET_CLOSE as SNIPPET_CLOSE
from db.engines.base.operations import SNIPPET_OPEN as SNIPPET_OPEN
from db.engines.base.operations import Dialect

MAX_SEARCH_TERMS = 16


# Whitespace and control characters separate words: a NUL would end the
# query string inside SQLite's FTS5 parser.
_SEPARATORS = re.compile(r"[\s\x00-\x1f\x7f]+")


def search_terms(text: str) -> list[str]:
    """The words of a query: chunks between separators, with a letter or digit.

    Chunks without one would be empty phrases in the index and are dropped.
    """
    return [
        chunk for chunk in _SEPARATORS.split(text) if any(ch.isalnum() for ch in chunk)
    ]


class TooManyTermsError(ValueError):
    """A query with more words than MAX_SEARCH_TERMS: refused, never cut."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} search words; at most {MAX_SEARCH_TERMS} are taken")
        self.count = count


class Search:
    """Search the messages a user may read."""

    def __init__(self, orm_db: orm.Database, dialect: Dialect) -> None:
        self._db = orm_db
        self._dialect = dialect

    def messages(self, user_id: int, text: str, limit: int) -> list[SearchHit]:
        """Messages of the user's conversations matching every word, best first."""
        terms = search_terms(text)
        if len(terms) > MAX_SEARCH_TERMS:
            # Every word must match: dropping some would answer another question.
            raise TooManyTermsError(len(terms))
        if not terms:
            return []
        rows = self._dialect.search(self._db, user_id, terms, limit)
        return [SearchHit(*row) for row in rows]
