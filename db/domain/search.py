"""Full-text search over the messages of a user's conversations.

One contract on both engines (docs/api.md, "Search"): the words of the
query and of every message are folded and split by db/domain/tokens.py,
the index (search_terms, db/domain/search_index.py) holds the same terms
on either engine, and the same portable SQL reads it. The scan starts
from the caller's memberships and seeks each conversation's entries by
the leading key (conversation_id, term): a search never reads the index
entries of conversations the caller is not in. Every query word must
match; a word with nothing to match is refused, never dropped.

Order: newest first (message id descending) on both engines, so a limit
returns the same hits everywhere. A query word that splits into several
words (e-mail, 3.14, example.com) matches where those words follow one
another in one chunk of the message; that, and words longer than the
index keeps, are checked here on the candidates the index returns.
Snippets are cut here too, the same on both engines: at most
SNIPPET_CHARS characters around the first match, the matches between
SNIPPET_OPEN and SNIPPET_CLOSE, the text otherwise raw.
"""

from __future__ import annotations

import time

from pony import orm

from db.domain.records import SearchHit
from db.domain.tokens import QueryWord, Token, query_words, term, tokens
from db.engines.base.operations import SNIPPET_CLOSE as SNIPPET_CLOSE
from db.engines.base.operations import SNIPPET_OPEN as SNIPPET_OPEN
from db.engines.base.operations import Dialect
from db.errors import BudgetExceededError

MAX_SEARCH_TERMS = 16
SNIPPET_CHARS = 200
# Of a snippet's characters, about this many come before the first match.
_LEAD_CHARS = 60
ELLIPSIS = "…"


class TooManyTermsError(ValueError):
    """A query with more words than MAX_SEARCH_TERMS: refused, never cut."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} search words; at most {MAX_SEARCH_TERMS} are taken")
        self.count = count


class UnmatchableWordError(ValueError):
    """A query word with no letter, digit or symbol: it could never match."""

    def __init__(self, words: list[str]) -> None:
        super().__init__(f"nothing to search in {', '.join(map(repr, words))}")
        self.words = words


def parse(text: str) -> list[QueryWord]:
    """The query's words; TooManyTermsError, UnmatchableWordError as documented."""
    parsed = query_words(text)
    if len(parsed) > MAX_SEARCH_TERMS:
        # Every word must match: dropping some would answer another question.
        raise TooManyTermsError(len(parsed))
    empty = [w.typed for w in parsed if not w.words]
    if empty:
        raise UnmatchableWordError(empty)
    return parsed


def match_spans(body: str, query: list[QueryWord]) -> list[tuple[int, int]] | None:
    """Where each query word occurs in body (sorted), or None if one does not."""
    found = tokens(body)
    spans: list[tuple[int, int]] = []
    for word in query:
        spans_of_word = _occurrences(found, word.words)
        if not spans_of_word:
            return None
        spans.extend(spans_of_word)
    return sorted(set(spans))


def _occurrences(found: list[Token], words: tuple[str, ...]) -> list[tuple[int, int]]:
    """Spans where words follow one another in one chunk of found."""
    n = len(words)
    if n == 1:
        return [(t.start, t.end) for t in found if t.text == words[0]]
    spans = []
    for i in range(len(found) - n + 1):
        run = found[i : i + n]
        if run[0].chunk == run[-1].chunk and all(
            t.text == w for t, w in zip(run, words, strict=True)
        ):
            spans.append((run[0].start, run[-1].end))
    return spans


def snippet(body: str, spans: list[tuple[int, int]]) -> str:
    """At most SNIPPET_CHARS of body around the first span, spans marked."""
    first = spans[0][0]
    start = max(0, first - _LEAD_CHARS)
    if start > 0:  # begin at a word boundary when one is near
        space = body.find(" ", start, first)
        start = space + 1 if space != -1 else start
    end = min(len(body), start + SNIPPET_CHARS)
    if end < len(body):
        space = body.rfind(" ", max(first, start + SNIPPET_CHARS // 2), end)
        end = space if space != -1 else end
    parts = [ELLIPSIS] if start > 0 else []
    at = start
    for s, e in spans:
        s, e = max(s, start), min(e, end)
        if s >= e or s < at:
            continue
        parts += [body[at:s], SNIPPET_OPEN, body[s:e], SNIPPET_CLOSE]
        at = e
    parts.append(body[at:end])
    if end < len(body):
        parts.append(ELLIPSIS)
    return "".join(parts)


def candidates_sql(n_terms: int) -> str:
    """Ids of the caller's messages holding every term, newest first.

    One pass over the caller's index entries for the query's terms (each
    an index seek by (conversation_id, term)), grouped by message: a
    message holds each term once (the primary key), so n_terms rows mean
    all of them. A self-join per term would cost PostgreSQL's planner
    seconds at 16 terms.
    """
    terms = ", ".join(f"$w{i}" for i in range(n_terms))
    return (
        "SELECT m.id, m.conversation_id, u.handle, m.created_at, m.body FROM ("
        "SELECT t.message_id AS id FROM memberships mb CROSS JOIN search_terms t"
        " WHERE mb.user_id = $user_id AND t.conversation_id = mb.conversation_id"
        f" AND t.term IN ({terms}) AND t.message_id < $before"
        f" GROUP BY t.message_id HAVING count(*) = {n_terms}"
        " ORDER BY t.message_id DESC LIMIT $n) hit"
        " JOIN messages m ON m.id = hit.id JOIN users u ON u.id = m.author_id"
        " ORDER BY m.id DESC"
    )


class Search:
    """Search the messages a user may read."""

    def __init__(self, orm_db: orm.Database, dialect: Dialect) -> None:
        self._db = orm_db
        self._dialect = dialect

    def messages(
        self, user_id: int, text: str, limit: int, budget: float = 2.0
    ) -> list[SearchHit]:
        """Messages of the user's conversations matching every word, newest first.

        BudgetExceededError when the search takes more than budget seconds.
        """
        query = parse(text)
        terms = sorted({term(w) for word in query for w in word.words})
        sql = candidates_sql(len(terms))
        params: dict[str, object] = {f"w{i}": t for i, t in enumerate(terms)}
        params["user_id"] = user_id
        deadline = time.monotonic() + budget
        hits: list[SearchHit] = []
        before = 2**63 - 1
        batch = max(limit, 20)
        while len(hits) < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BudgetExceededError(f"search took more than {budget:g} s")
            params["before"], params["n"] = before, batch
            rows = self._dialect.bounded_select(self._db, sql, params, left)
            for message_id, conversation_id, handle, created_at, body in rows:
                spans = match_spans(body, query)
                if spans is not None:
                    stamp = self._dialect.timestamp(created_at)
                    snip = snippet(body, spans)
                    hits.append(
                        SearchHit(message_id, conversation_id, handle, stamp, snip)
                    )
                    if len(hits) == limit:
                        break
            if len(rows) < batch:
                break
            before = rows[-1][0]
            batch = min(batch * 4, 2000)
        return hits
