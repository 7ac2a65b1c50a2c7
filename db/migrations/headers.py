"""The `-- migrate:` directives a migration file may put in its header.

The header is the comment lines before the first statement. Any other
`-- migrate:` line (an unknown key, a bad value, a directive after the
first statement) is an error, so a typo cannot silently switch a safety
off.
"""

from __future__ import annotations

import re

from db.engines.base.migration import Header
from db.errors import MigrationError

DIRECTIVE = re.compile(r"^\s*--\s*migrate\s*:(?P<body>.*)$", re.IGNORECASE)
# PostgreSQL's own duration syntax: a number and an optional unit.
DURATION = re.compile(r"^\d+(ms|s|min|h|d)?$")

KNOWN = (
    "foreign_keys=off",
    "destructive",
    "transaction=off",
    "lock_timeout=DURATION",
    "statement_timeout=DURATION",
)


def _header_end(lines: list[str]) -> int:
    """Index of the first line that is neither blank nor a -- comment."""
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            return number
    return len(lines)


def parse_header(name: str, text: str) -> Header:
    """Read the directives of one file's header; MigrationError names the line."""
    lines = text.split("\n")
    end = _header_end(lines)
    values: dict[str, str | bool] = {}
    for number, line in enumerate(lines, 1):
        match = DIRECTIVE.match(line)
        if not match:
            continue
        if number > end:
            raise MigrationError(
                f"{name} line {number}: '-- migrate:' directives belong in the "
                "header, before the first statement"
            )
        for word in match["body"].split():
            key, sep, value = word.partition("=")
            key = key.lower()
            _check(name, number, key, value if sep else None)
            if key in values:
                raise MigrationError(f"{name} line {number}: {key} given twice")
            values[key] = value if sep else True
    return Header(
        foreign_keys_off="foreign_keys" in values,
        destructive="destructive" in values,
        transaction="transaction" not in values,
        lock_timeout=_str(values.get("lock_timeout")),
        statement_timeout=_str(values.get("statement_timeout")),
    )


def _str(value: str | bool | None) -> str | None:
    return value if isinstance(value, str) else None


def _check(name: str, number: int, key: str, value: str | None) -> None:
    where = f"{name} line {number}"
    if key in ("foreign_keys", "transaction"):
        if value is None or value.lower() != "off":
            raise MigrationError(f"{where}: {key} takes the value off ({key}=off)")
    elif key == "destructive":
        if value is not None:
            raise MigrationError(f"{where}: destructive takes no value")
    elif key in ("lock_timeout", "statement_timeout"):
        if value is None or not DURATION.match(value):
            raise MigrationError(
                f"{where}: {key} takes a duration such as 5s, 500ms or 10min "
                f"(got {value!r})"
            )
    else:
        raise MigrationError(
            f"{where}: unknown directive {key!r} (known: {', '.join(KNOWN)})"
        )
