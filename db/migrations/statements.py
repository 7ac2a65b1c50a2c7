"""What a migration's statements do to tables, read from their tokens.

The lint compares the schema before and after a file on a scratch
database; these readers tell it what the schema alone cannot: that a
table or column was renamed rather than dropped and re-added, and how a
column that became NOT NULL was filled (UPDATE ... SET, ADD COLUMN ...
DEFAULT, or its expression in a rebuild's INSERT ... SELECT).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from db.engines.base import sql
from db.engines.base.sql import Dialect, Token


@dataclass
class Effects:
    """What one file's statements say about tables and columns (lower-cased)."""

    table_renames: dict[str, str] = field(default_factory=dict)  # old -> new
    column_renames: dict[tuple[str, str], str] = field(default_factory=dict)
    added_with_default: set[tuple[str, str]] = field(default_factory=set)
    updated: set[tuple[str, str]] = field(default_factory=set)  # UPDATE t SET c = ...
    # INSERT INTO t (cols) SELECT exprs: t -> column -> expression tokens.
    copies: dict[str, dict[str, list[Token]]] = field(default_factory=dict)
    copied_star: set[str] = field(default_factory=set)  # INSERT INTO t SELECT *

    def final_name(self, table: str) -> str:
        """The name a table written to in this file ends up with."""
        seen = {table}
        while table in self.table_renames and self.table_renames[table] not in seen:
            table = self.table_renames[table]
            seen.add(table)
        return table


def _alter(tokens: list[Token], effects: Effects) -> None:
    words = sql.words(tokens)
    i = sql.skip(words, 2, "if", "exists", "only")
    if i >= len(tokens):
        return
    table, i = sql.name_at(tokens, i)
    for action in sql.split_top_level(tokens[i:]):
        act = sql.words(action)
        if len(act) >= 3 and act[:2] == ["rename", "to"]:
            effects.table_renames[table] = act[2]
        elif act[:1] == ["rename"] and "to" in act:
            start = 2 if len(act) > 1 and act[1] == "column" else 1
            to = act.index("to")
            if to == start + 1 and to + 1 < len(act):
                effects.column_renames[(table, act[start])] = act[to + 1]
        elif act[:1] == ["add"] and "default" in act:
            start = sql.skip(act, 1, "column", "if", "not", "exists")
            if start < len(act):
                effects.added_with_default.add((table, act[start]))


def _update(tokens: list[Token], effects: Effects) -> None:
    words = sql.words(tokens)
    i = sql.skip(
        words, 1, "only", "or", "replace", "rollback", "abort", "fail", "ignore"
    )
    if i >= len(tokens):
        return
    table, i = sql.name_at(tokens, i)
    if "set" not in words[i:]:
        return
    start = words.index("set", i) + 1
    depth = 0
    expect_name = True
    for token in tokens[start:]:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        elif (
            depth == 0
            and token.kind == "word"
            and token.name in ("from", "where", "returning")
        ):
            break
        elif depth == 0 and token.text == ",":
            expect_name = True
        elif expect_name and token.is_name:
            effects.updated.add((table, token.name))
            expect_name = False


def _insert(tokens: list[Token], effects: Effects) -> None:
    words = sql.words(tokens)
    if "into" not in words:
        return
    i = words.index("into") + 1
    if i >= len(tokens):
        return
    table, i = sql.name_at(tokens, i)
    columns: list[str] | None = None
    if i < len(tokens) and tokens[i].text == "(":
        close = i + 1
        depth = 1
        while close < len(tokens) and depth:
            depth += {"(": 1, ")": -1}.get(tokens[close].text, 0)
            close += 1
        columns = [
            part[0].name
            for part in sql.split_top_level(tokens[i + 1 : close - 1])
            if part
        ]
        i = close
    if i >= len(tokens) or words[i] != "select":
        return
    body = tokens[i + 1 :]
    depth, end = 0, len(body)
    for n, token in enumerate(body):
        depth += {"(": 1, ")": -1}.get(token.text, 0)
        if depth == 0 and token.kind == "word" and token.name == "from":
            end = n
            break
    exprs = sql.split_top_level(body[:end])
    if len(exprs) == 1 and sql.words(exprs[0]) == ["*"]:
        effects.copied_star.add(table)
        return
    if columns is None:
        return  # positional without a list: the schema decides (see lint)
    effects.copies[table] = dict(zip(columns, exprs, strict=False))


def effects_of(statements: tuple[str, ...] | list[str], dialect: Dialect) -> Effects:
    """Read renames and fills from a file's statements."""
    effects = Effects()
    for statement in statements:
        tokens = sql.significant(sql.tokenize(statement, dialect))
        words = sql.words(tokens[:2])
        if words == ["alter", "table"]:
            _alter(tokens, effects)
        elif words[:1] == ["update"]:
            _update(tokens, effects)
        elif words[:1] in (["insert"], ["replace"]):
            _insert(tokens, effects)
    return effects


def is_plain_copy(expr: list[Token]) -> bool:
    """Whether an expression is just a column (maybe qualified) or NULL: no fill."""
    names = [t for t in expr if t.kind != "op" or t.text != "."]
    if not names:
        return True
    if len(names) == 1 and names[0].kind == "word" and names[0].name == "null":
        return True
    return all(t.is_name for t in names) and len(names) <= 2
