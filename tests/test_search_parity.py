"""The search parity suite: one corpus, the same answers on both engines.

The corpus covers every class of docs/api.md's tokenization contract; it
is posted through the API on each engine, then queried through the API.
Hand-written queries state what must be found (the same expectation on
both engines); every word of the corpus, and pairs of them, are checked
against an engine-free reading of the contract (tokens.words over each
message): the engines' index and SQL must agree with it exactly, hit for
hit and in order (newest first).
"""

# ruff: noqa: RUF001 - the corpus holds look-alike characters on purpose

from __future__ import annotations

import itertools

import falcon.testing
import pytest

from db.database import Database
from db.domain.tokens import query_words, tokens
from db.target import DatabaseTarget
from service.app import create_app
from tests.engines import settings_for
from tests.messaging_helpers import ADMIN_TOKEN, bearer, make_user, post, start

Client = falcon.testing.TestClient

BASE = {
    "cafe": "Meet at the café at noon",
    "cafe_plain": "the cafe on Main street",
    "ecole": "L'École est fermée",
    "creme": "CRÈME brûlée for dessert",
    "strasse": "Die Straße ist lang",
    "sigma": "ΣΟΦΟΣ and σοφος agree",
    "url": "see https://example.com/docs/node/index.html now",
    "email": "mail ann.lee@mail.example.org today",
    "host": "ping db-1.internal.example.net",
    "path": "edit /usr/local/etc/app.conf",
    "winpath": r"open C:\Users\ann\notes.txt",
    "hyphen": "a well-known state-of-the-art tool",
    "dotted": "the U.S.A. and e.g. abbreviations",
    "decimal": "pi is 3.14 and e is 2.718",
    "comma_decimal": "pi is 3,14 in France",
    "spaced_digits": "3 14 are two numbers",
    "version": "upgrade to v1.2.3 or v10",
    "signed": "temperature -5 or +7 or −3",
    "money": "costs $5 or €4.50",
    "entity": "Tom &amp; Jerry &lt;3",
    "html": "<b>bold</b> and <i>it</i>",
    "fraction": "add ½ cup",
    "super": "x² and ①",
    "fullwidth": "ｆｕｌｌｗｉｄｔｈ ＡＢＣ",
    "ligature": "ﬁnal oﬃce",
    "arabic_digits": "room ٣٤",
    "cjk": "東京タワー visit",
    "emoji": "party 🎉 time",
    "apostrophe": "don't stop, it's fine",
    "underscore": "snake_case_name here",
    "hashtag": "#release @ann",
    "long": "x" * 80 + " tail",
    "nordic": "Søren and Łódź",
    "german": "Müller MUELLER",
    "soft": "co\u00adoperate",
    "lunch1": "lunch on Friday",
    "lunch2": "Lunch? yes, LUNCH!",
    "lunch3": "no lunch today, sorry",
    "mixed": "CamelCase and ALLCAPS",
    "quote": '"quoted" words',
    "parens": "(inside) [brackets] {braces}",
    "colon": "time 12:30 ok",
    "plus": "C++ and C#",
    "ip": "server 10.0.0.1 down",
    "date": "due 2026-12-08",
    "tab": "tab\tseparated\nlines",
}
COPIES = 6  # each base message, in different conversations and posters

HAND: list[tuple[str, set[str]]] = [
    ("cafe", {"cafe", "cafe_plain"}),
    ("CAFÉ", {"cafe", "cafe_plain"}),
    ("ecole", {"ecole"}),
    ("école", {"ecole"}),
    ("creme brulee", {"creme"}),
    ("strasse", {"strasse"}),
    ("straße", {"strasse"}),
    ("σοφος", {"sigma"}),
    ("ΣΟΦΟΣ", {"sigma"}),
    ("example", {"url", "email", "host"}),
    ("example.com", {"url"}),
    ("node", {"url"}),
    ("docs/node", {"url"}),
    ("ann.lee@mail.example.org", {"email"}),
    ("lee", {"email"}),
    ("internal", {"host"}),
    ("db-1", {"host"}),
    ("usr", {"path"}),
    ("/usr/local", {"path"}),
    ("app.conf", {"path"}),
    ("notes.txt", {"winpath"}),
    ("well-known", {"hyphen"}),
    ("known", {"hyphen"}),
    ("state-of-the-art", {"hyphen"}),
    ("u.s.a", {"dotted"}),
    ("3.14", {"decimal", "comma_decimal"}),
    ("14", {"decimal", "comma_decimal", "spaced_digits"}),
    ("2.718", {"decimal"}),
    ("v1", {"version"}),
    ("v1.2.3", {"version"}),
    ("v10", {"version"}),
    ("5", {"signed", "money"}),
    ("-5", {"signed", "money"}),
    ("+7", {"signed"}),
    # A minus sign is punctuation: -3 is the word 3 (docs/api.md).
    (
        "\u22123",
        {"signed", "decimal", "comma_decimal", "spaced_digits", "entity", "version"},
    ),
    (
        "-3",
        {"signed", "decimal", "comma_decimal", "spaced_digits", "entity", "version"},
    ),
    ("$5", {"money"}),
    ("€", {"money"}),
    ("4.50", {"money"}),
    ("amp", {"entity"}),
    ("&amp;", {"entity"}),
    ("jerry", {"entity"}),
    ("bold", {"html"}),
    ("<b>", {"html"}),
    ("½", {"fraction"}),
    ("1/2", {"fraction"}),
    ("lunch ½", set()),
    # Superscripts are digits (NFKC): x² is the word x2; ² alone is 2.
    ("\u00b2", {"decimal", "fraction", "version"}),
    ("x\u00b2", {"super"}),
    ("fullwidth abc", {"fullwidth"}),
    ("final office", {"ligature"}),
    ("34", {"arabic_digits"}),
    ("東京", {"cjk"}),
    ("京", {"cjk"}),
    ("🎉", {"emoji"}),
    ("don't", {"apostrophe"}),
    ("dont", set()),
    ("snake_case_name", {"underscore"}),
    ("case", {"underscore"}),
    ("release", {"hashtag"}),
    ("x" * 80, {"long"}),
    ("x" * 70, set()),
    ("soren lodz", {"nordic"}),
    ("muller", {"german"}),
    ("cooperate", {"soft"}),
    ("lunch", {"lunch1", "lunch2", "lunch3"}),
    ("lunch friday", {"lunch1"}),
    ("lunch today", {"lunch3"}),
    ("lunch nothere", set()),
    ("camelcase", {"mixed"}),
    ("quoted", {"quote"}),
    ("brackets braces", {"parens"}),
    ("12:30", {"colon"}),
    ("c++", {"plus"}),
    ("10.0.0.1", {"ip"}),
    ("2026-12-08", {"date"}),
    ("separated lines", {"tab"}),
]


def oracle(corpus: list[tuple[int, str]], q: str) -> list[int]:
    """Ids matching q by the contract alone, newest first (no index, no SQL)."""
    wanted = [w.words for w in query_words(q)]
    found = []
    for message_id, body in corpus:
        chunks: dict[int, list[str]] = {}
        for t in tokens(body):
            chunks.setdefault(t.chunk, []).append(t.text)
        if all(
            any(
                tuple(words[i : i + len(seq)]) == seq
                for words in chunks.values()
                for i in range(len(words))
            )
            for seq in wanted
        ):
            found.append(message_id)
    return sorted(found, reverse=True)[:50]


def queries() -> list[str]:
    """Every distinct whitespace word of the corpus, and neighbouring pairs."""
    typed: list[str] = []
    for body in BASE.values():
        parts = body.split()
        typed += parts
        typed += [f"{a} {b}" for a, b in itertools.pairwise(parts)]
    usable = [q for q in dict.fromkeys(typed) if all(w.words for w in query_words(q))]
    return [q for q in usable if len(q) <= 200 and len(q.split()) <= 16]


@pytest.fixture
def corpus(
    target: DatabaseTarget, database: Database
) -> tuple[Client, str, list[tuple[int, str]], dict[int, str]]:
    """The corpus posted through the API: the client, ann's token, (id, body), id->label."""
    client = falcon.testing.TestClient(
        create_app(
            settings_for(target, admin_token=ADMIN_TOKEN, search_rate=100_000),
            database=database,
        )
    )
    ann, bob = make_user(client, "ann"), make_user(client, "bob")
    outsider = make_user(client, "eve")
    shared = [start(client, ann, ["bob"]) for _ in range(3)]
    others = start(client, outsider, [])
    posted: list[tuple[int, str]] = []
    labels: dict[int, str] = {}
    for copy in range(COPIES):
        for label, body in BASE.items():
            author = ann if copy % 2 else bob
            message = post(client, author, shared[copy % 3], body)
            posted.append((message["id"], body))
            labels[message["id"]] = label
            post(client, outsider, others, body)  # never found by ann
    return client, ann, posted, labels


def hits(client: Client, token: str, q: str) -> list[int]:
    """Message ids GET /v1/search answers for q (limit 50), in order."""
    result = client.simulate_get(
        "/v1/search", params={"q": q, "limit": 50}, headers=bearer(token)
    )
    assert result.status_code == 200, (q, result.text)
    return [item["message_id"] for item in result.json["items"]]


def test_hand_written_queries_find_what_the_contract_says(
    corpus: tuple[Client, str, list[tuple[int, str]], dict[int, str]],
) -> None:
    """Each class of the contract: the same expected messages on both engines."""
    client, ann, _posted, labels = corpus
    wrong = {}
    for q, expected in HAND:
        found = hits(client, ann, q)
        got = {labels[i] for i in found}
        if got != expected or len(found) != COPIES * len(expected):
            wrong[q] = (sorted(got), sorted(expected), len(found))
    assert wrong == {}


def test_every_corpus_word_matches_the_contract_exactly(
    corpus: tuple[Client, str, list[tuple[int, str]], dict[int, str]],
) -> None:
    """At least 150 queries: the engine answers what the contract alone answers."""
    client, ann, posted, _labels = corpus
    asked = queries()
    assert len(asked) >= 150
    wrong = {
        q: (hits(client, ann, q), oracle(posted, q))
        for q in asked
        if hits(client, ann, q) != oracle(posted, q)
    }
    assert wrong == {}
