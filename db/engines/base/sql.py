"""SQL text as tokens: splitting, comments, references, select lists.

One small tokenizer for both dialects, so that the runner, the lint and
the generator agree on what is a comment, a string or an identifier:
SQLite's quotes ('...', "...", `...`, [...]) and PostgreSQL's (E'...',
dollar quotes $tag$...$tag$, nested /* */ comments). One statement
splitter on top of it, which keeps SQLite trigger bodies (CREATE TRIGGER
... BEGIN ... END) and PostgreSQL's BEGIN ATOMIC ... END bodies whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Dialect = Literal["sqlite", "postgres"]
# Every engine, by the SQL it speaks; its package is db/engines/<name>/.
DIALECTS: tuple[Dialect, ...] = ("sqlite", "postgres")

_WORD = re.compile(r"[A-Za-z_\x80-\uffff][A-Za-z0-9_$\x80-\uffff]*")
_NUMBER = re.compile(r"\d+(\.\d*)?([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?")
_SPACE = re.compile(r"\s+")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token and its exact text."""

    kind: Literal["word", "ident", "string", "number", "op", "comment", "space"]
    text: str

    @property
    def name(self) -> str:
        """A word or quoted identifier as the name it denotes, lower-cased."""
        if self.kind == "ident":
            body = self.text[1:-1]
            if self.text[0] == "[":
                return body.lower()
            quote = self.text[0]
            return body.replace(quote * 2, quote).lower()
        return self.text.lower()

    @property
    def is_name(self) -> bool:
        """Whether the token is a bare word or a quoted identifier."""
        return self.kind in ("word", "ident")


def _quoted_end(sql: str, start: int, quote: str, backslash: bool = False) -> int:
    """Index just past the closing quote (doubled quotes escape it)."""
    i = start + 1
    while i < len(sql):
        char = sql[i]
        if backslash and char == "\\":
            i += 2
            continue
        if char == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return len(sql)  # unterminated: the database names the error


def _block_comment_end(sql: str, start: int, nested: bool) -> int:
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i):
            depth = depth + 1 if nested or depth == 0 else depth
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


def tokenize(sql: str, dialect: Dialect) -> list[Token]:
    """Split SQL text into tokens; joining their texts gives the text back."""
    tokens: list[Token] = []
    i, n = 0, len(sql)
    postgres = dialect == "postgres"
    while i < n:
        char = sql[i]
        if char.isspace():
            end = _SPACE.match(sql, i).end()  # type: ignore[union-attr]
            tokens.append(Token("space", sql[i:end]))
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            end = n if newline < 0 else newline
            tokens.append(Token("comment", sql[i:end]))
        elif sql.startswith("/*", i):
            end = _block_comment_end(sql, i, nested=postgres)
            tokens.append(Token("comment", sql[i:end]))
        elif char == "'":
            end = _quoted_end(sql, i, "'")
            tokens.append(Token("string", sql[i:end]))
        elif char == '"' or (not postgres and char == "`"):
            end = _quoted_end(sql, i, char)
            tokens.append(Token("ident", sql[i:end]))
        elif char == "[" and not postgres:
            close = sql.find("]", i)
            end = n if close < 0 else close + 1
            tokens.append(Token("ident", sql[i:end]))
        elif char == "$" and postgres and (tag := _DOLLAR_TAG.match(sql, i)):
            close = sql.find(tag.group(0), tag.end())
            end = n if close < 0 else close + len(tag.group(0))
            tokens.append(Token("string", sql[i:end]))
        elif word := _WORD.match(sql, i):
            end = word.end()
            if end < n and sql[end] == "'" and word.group(0).lower() in ("e", "x", "b"):
                # E'...' (backslash escapes), X'..' and B'..' literals.
                backslash = postgres and word.group(0).lower() == "e"
                end = _quoted_end(sql, end, "'", backslash)
                tokens.append(Token("string", sql[i:end]))
            else:
                tokens.append(Token("word", sql[i:end]))
        elif number := _NUMBER.match(sql, i):
            end = number.end()
            tokens.append(Token("number", sql[i:end]))
        else:
            end = i + 1
            tokens.append(Token("op", char))
        i = end
    return tokens


def significant(tokens: list[Token]) -> list[Token]:
    """The tokens without whitespace and comments."""
    return [t for t in tokens if t.kind not in ("space", "comment")]


def is_blank(sql: str, dialect: Dialect) -> bool:
    """Whether the text holds nothing but comments, whitespace and ';'."""
    return all(
        t.kind in ("space", "comment") or t.text == ";" for t in tokenize(sql, dialect)
    )


def strip_comments(sql: str, dialect: Dialect) -> str:
    """The text with every comment replaced by a space."""
    if "--" not in sql and "/*" not in sql:
        return sql  # no comment can start anywhere in it
    return "".join(
        " " if t.kind == "comment" else t.text for t in tokenize(sql, dialect)
    )


def _opens_body(words: list[str], dialect: Dialect) -> bool:
    """Whether BEGIN, after these words of a statement, opens a body ending in END."""
    if dialect == "postgres":
        return False  # BEGIN ATOMIC: decided on ATOMIC
    # CREATE [TEMP | TEMPORARY] TRIGGER ... BEGIN stmt; ... END
    return words[:2] == ["CREATE", "TRIGGER"] or (
        words[:1] == ["CREATE"]
        and words[1:2] in (["TEMP"], ["TEMPORARY"])
        and words[2:3] == ["TRIGGER"]
    )


def split(sql: str, dialect: Dialect) -> list[str]:
    """Split a script at the semicolons that end statements.

    Semicolons inside quotes, comments and bodies do not count: an SQLite
    trigger's BEGIN ... END, PostgreSQL's BEGIN ATOMIC ... END (CASE ...
    END inside either). Statements come without their ';'; those that
    hold only comments are left out.
    """
    statements: list[str] = []
    current: list[Token] = []
    words: list[str] = []  # the current statement's words so far, upper-cased
    depth = 0
    for token in tokenize(sql, dialect):
        current.append(token)
        if token.kind == "word":
            word = token.text.upper()
            opens = (word == "ATOMIC" and words[-1:] == ["BEGIN"]) or (
                word == "BEGIN" and _opens_body(words, dialect)
            )
            if opens or (depth and word == "CASE"):
                depth += 1  # CASE ... END inside a body must not close it
            elif depth and word == "END":
                depth -= 1
            words.append(word)
        elif token.kind == "op" and token.text == ";" and depth == 0:
            _flush(statements, current)
            current, words = [], []
    _flush(statements, current)
    return statements


def _flush(statements: list[str], tokens: list[Token]) -> None:
    if all(t.kind in ("space", "comment") or t.text == ";" for t in tokens):
        return  # nothing but comments: no statement
    text = "".join(t.text for t in tokens)
    statements.append(text.strip().removesuffix(";").rstrip())


def references(sql: str, dialect: Dialect) -> set[str]:
    """Every name a statement mentions (words and quoted identifiers), lower-cased.

    Strings are left out: content='messages' in an FTS5 table is an option,
    not a reference a rename would follow.
    """
    return {t.name for t in tokenize(sql, dialect) if t.is_name}


def split_top_level(tokens: list[Token], separator: str = ",") -> list[list[Token]]:
    """Split tokens at separators outside parentheses."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "op" and token.text == "(":
            depth += 1
        elif token.kind == "op" and token.text == ")":
            depth -= 1
        if depth == 0 and token.kind == "op" and token.text == separator:
            parts.append([])
            continue
        parts[-1].append(token)
    return parts


def words(tokens: list[Token]) -> list[str]:
    """Each token as a name (lower-cased) or its text: for reading statements."""
    return [t.name if t.is_name else t.text for t in tokens]


def name_at(tokens: list[Token], i: int) -> tuple[str, int]:
    """A possibly schema-qualified name starting at i: (its last part, next index)."""
    name = tokens[i].name
    i += 1
    while i + 1 < len(tokens) and tokens[i].text == "." and tokens[i + 1].is_name:
        name = tokens[i + 1].name
        i += 2
    return name, i


def skip(words: list[str], i: int, *optional: str) -> int:
    """The index of the first word from i on that is not one of optional."""
    while i < len(words) and words[i] in optional:
        i += 1
    return i


def quote_identifier(name: str) -> str:
    """Quote a table, column or index name for SQL text (both dialects)."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(text: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
