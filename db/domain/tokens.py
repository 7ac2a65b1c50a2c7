"""The search tokenization contract: one function for the index and every query.

Both engines index what `index_terms` writes and are asked for what
`query_words` reads, so they cannot split or fold a word differently;
docs/api.md ("What search matches") states the contract for users:

- Every character is folded on its own: NFKC (compatibility forms:
  full-width letters, ligatures, superscripts, circled and fraction
  digits), full case folding (so Greek final sigma is sigma and ß is
  ss), accents and other non-spacing marks removed (NFKD, then NFC), a
  few letters without a decomposition mapped by hand (ø o, ł l, đ d,
  æ ae, ...), and every decimal digit of any script as its ASCII digit.
- Letters, digits, numbers and spacing marks make words. A symbol (the
  Unicode categories S*: $ + < = > ^ ` | ~ € © ° ™, emoji ...) is a
  word of its own, as is each Han ideograph and kana (those scripts do
  not put spaces between words). Punctuation (. , - _ / @ : & ; ' ...)
  separates words; whitespace separates words and chunks.
- Format characters (soft hyphen, zero-width joiners) disappear.

A query word whose text splits into several words (`e-mail`,
`3.14`, `example.com`, `$5`) matches where those words follow one
another in one chunk of the message (no whitespace between them), with
any punctuation between: `3.14` finds "3.14" and "3,14", not "3 14".
Nothing here knows an engine, HTML or the database.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import NamedTuple

# Index terms are cut to this many characters (queries' too), so no engine
# meets a lexeme past its limits (PostgreSQL: 2 KiB); whole words are
# compared when a hit is checked (db/domain/search.py), so the cut never
# finds a longer word by its beginning.
MAX_TERM_CHARS = 64

# Characters that neither NFKD nor case folding relates to a base letter,
# and two signs read as the punctuation they stand for: the fraction slash
# of NFKC's ½ (1, U+2044, 2), so that ½ is 1/2, and the minus sign (U+2212),
# so that minus 5 is -5.
_MAPPED = {
    "ø": "o",
    "ł": "l",
    "đ": "d",
    "ð": "d",
    "ħ": "h",
    "\u0131": "i",  # dotless i
    "ŧ": "t",
    "ŀ": "l",
    "æ": "ae",
    "œ": "oe",
    "þ": "th",
    "\u2044": "/",
    "\u2212": "-",
}
_WORD, _SINGLE, _SEPARATOR = 0, 1, 2
# Scripts written without spaces between words: one ideograph or kana, one
# word (Han: U+3400-4DBF, U+4E00-9FFF, U+F900-FAFF, U+20000-3FFFF; kana:
# U+3040-30FF, U+31F0-31FF).
_SINGLE_RANGES = (
    (0x3040, 0x30FF),
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x3FFFF),
)
# ASCII after lower(): whitespace (a new chunk), words, symbols.
_ASCII_SCAN = re.compile(r"(\s+)|[a-z0-9]+|[$+<=>^`|~]")
_ASCII_TERMS = re.compile(r"[a-z0-9]+|[$+<=>^`|~]")
_CACHE_LIMIT = 100_000  # characters remembered: every script fits, memory stays bounded


class Token(NamedTuple):
    """A word: its folded text, where it is in the text, and its chunk."""

    text: str
    start: int
    end: int
    chunk: int


def _fold_char(ch: str) -> str:
    """One character folded: NFKC, case folded, marks off, digits as ASCII."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", ch).casefold())
    kept = []
    for c in folded:
        category = unicodedata.category(c)
        if category in ("Mn", "Me", "Cf"):
            continue
        if category == "Nd":
            c = str(unicodedata.decimal(c))
        kept.append(_MAPPED.get(c, c))
    return unicodedata.normalize("NFC", "".join(kept))


def _kind(c: str) -> int:
    """Whether a folded character makes words, is one, or separates them."""
    code = ord(c)
    if any(low <= code <= high for low, high in _SINGLE_RANGES):
        return _SINGLE
    category = unicodedata.category(c)
    if category[0] in "LN" or category in ("Mc", "Co"):
        return _WORD
    if category[0] == "S":
        return _SINGLE
    return _SEPARATOR


class _Folds(dict[str, tuple[tuple[str, int], ...]]):
    """Each character's folded characters with their kinds, computed once."""

    def __missing__(self, ch: str) -> tuple[tuple[str, int], ...]:
        value = tuple((c, _kind(c)) for c in _fold_char(ch))
        if len(self) < _CACHE_LIMIT:
            self[ch] = value
        return value


class _IndexForms(dict[int, str]):
    """str.translate's table: each character as the index text spells it.

    Word characters stay, a word of its own gets spaces around it, and
    separators become a space: splitting the result on whitespace gives
    the same words as tokens(), at C speed.
    """

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        if ch.isspace():
            value = " "
        else:
            value = "".join(
                c if kind == _WORD else f" {c} " if kind == _SINGLE else " "
                for c, kind in _FOLDS[ch]
            )
        if len(self) < _CACHE_LIMIT:
            self[code] = value
        return value


_FOLDS = _Folds()
_INDEX_FORMS = _IndexForms()


def fold(text: str) -> str:
    """text folded character by character, as the index sees it."""
    return "".join(c for ch in text for c, _ in _FOLDS[ch])


def iter_tokens(text: str) -> Iterator[Token]:
    """The words of text, in order, with their places in text (lazily)."""
    if text.isascii():
        yield from _ascii_tokens(text)
        return
    chunk = 0
    run: list[str] = []
    start = end = 0
    for i, ch in enumerate(text):
        if ch.isspace():
            if run:
                yield Token("".join(run), start, end, chunk)
                run = []
            chunk += 1
            continue
        parts = _FOLDS[ch]
        if not parts:
            if run:  # a mark or a soft hyphen inside a word stays in it
                end = i + 1
            continue
        for c, kind in parts:
            if kind == _WORD:
                if not run:
                    start = i
                run.append(c)
                end = i + 1
                continue
            if run:
                yield Token("".join(run), start, end, chunk)
                run = []
            if kind == _SINGLE:
                yield Token(c, i, i + 1, chunk)
    if run:
        yield Token("".join(run), start, end, chunk)


def _ascii_tokens(text: str) -> Iterator[Token]:
    chunk = 0
    for m in _ASCII_SCAN.finditer(text.lower()):
        if m.lastindex:  # whitespace
            chunk += 1
        else:
            yield Token(m.group(), m.start(), m.end(), chunk)


def tokens(text: str) -> list[Token]:
    """The words of text, in order, with their places in text."""
    return list(iter_tokens(text))


def words(text: str) -> list[str]:
    """The folded words of text, in order (what tokens() finds, faster)."""
    if text.isascii():
        return _ASCII_TERMS.findall(text.lower())
    return text.translate(_INDEX_FORMS).split()


def term(word: str) -> str:
    """A word as the index holds it: cut to MAX_TERM_CHARS."""
    return word[:MAX_TERM_CHARS]


def index_terms(text: str) -> str:
    """What the index holds for text: its distinct terms, sorted, space-separated."""
    return " ".join(sorted({term(word) for word in words(text)}))


class QueryWord(NamedTuple):
    """A word of a query as typed, and the words of the index it stands for."""

    typed: str
    words: tuple[str, ...]


def query_words(text: str) -> list[QueryWord]:
    """The whitespace-separated words of a query, each with its folded words.

    A word with none (only punctuation) has an empty tuple: it can never
    match, and the caller says so rather than drop it.
    """
    return [
        QueryWord(typed, tuple(t.text for t in tokens(typed))) for typed in text.split()
    ]
