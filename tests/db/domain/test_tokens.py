"""The tokenization contract (db/domain/tokens.py), engine-free."""

from __future__ import annotations

import pytest

from db.domain.tokens import MAX_TERM_CHARS, index_terms, query_words, tokens, words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Café CRÈME", ["cafe", "creme"]),
        ("cafe", ["cafe"]),
        ("ΣΟΦΟΣ σοφος σοφοσ", ["σοφοσ"] * 3),
        ("Straße STRASSE", ["strasse", "strasse"]),
        ("\ufb01ne \uff46\uff55\uff4c\uff4c", ["fine", "full"]),
        ("٣ ३", ["3", "3"]),
        ("https://example.com/usr/node", ["https", "example", "com", "usr", "node"]),
        ("ann@mail.example.org", ["ann", "mail", "example", "org"]),
        ("/usr/local/bin", ["usr", "local", "bin"]),
        ("well-known", ["well", "known"]),
        ("3.14 -5", ["3", "14", "5"]),
        ("a&amp;b", ["a", "amp", "b"]),
        ("½", ["1", "2"]),
        ("$5 € 😀", ["$", "5", "€", "😀"]),
        ("東京", ["東", "京"]),
        ("soft\u00adhyphen zero\u200bwidth", ["softhyphen", "zerowidth"]),
        ("søren łódź", ["soren", "lodz"]),
        ("<b>bold</b>", ["<", "b", ">", "bold", "<", "b", ">"]),
    ],
)
def test_words_fold_and_split_as_documented(text: str, expected: list[str]) -> None:
    """Each class of the contract folds and splits as docs/api.md says."""
    assert words(text) == expected
    assert [t.text for t in tokens(text)] == expected


def test_tokens_point_back_into_the_text() -> None:
    """A token's start and end cover the characters it came from."""
    text = "Voilà: café-crème at https://x.org"
    for token in tokens(text):
        assert words(text[token.start : token.end]) == [token.text]


def test_chunks_count_whitespace_runs() -> None:
    """Words separated by punctuation share a chunk; whitespace starts a new one."""
    assert [t.chunk for t in tokens("3.14 and 3 14")] == [0, 0, 1, 2, 3]


def test_index_terms_are_distinct_sorted_and_cut() -> None:
    """The index holds each term once, sorted, cut to MAX_TERM_CHARS."""
    long = "x" * (MAX_TERM_CHARS + 10)
    assert index_terms(f"b a b {long}") == f"a b {'x' * MAX_TERM_CHARS}"


def test_query_words_keep_what_was_typed() -> None:
    """A query word keeps its typed text; punctuation alone has no words."""
    assert query_words("e-mail !!") == [
        ("e-mail", ("e", "mail")),
        ("!!", ()),
    ]
