"""Field types the schemas share: metadata keys, ids, text people write."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, GetJsonSchemaHandler, StringConstraints
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

# "." and ".." are path segments to every URL library, never keys. Spelled
# for JSON Schema (ECMA-262: "$" is the end of the text); Python's "$" also
# matches before a final newline, so Python code matches it with fullmatch.
KEY_PATTERN = r"^(?!\.{1,2}$)[A-Za-z0-9._:-]{1,128}$"
_KEY = re.compile(KEY_PATTERN)
# SQLite's INTEGER PRIMARY KEY (and PostgreSQL's bigint): ids are 1 .. 2**63 - 1.
MAX_ID = 2**63 - 1
# C0 control characters other than tab, line feed and carriage return: never
# text a person typed, and \x02/\x03 mark search matches inside snippets.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def is_key(text: str) -> bool:
    """True when the whole of text is a valid metadata key."""
    return _KEY.fullmatch(text) is not None


def _whole_key(value: str) -> str:
    if not is_key(value):
        raise PydanticCustomError(
            "string_pattern_mismatch",
            "String should match pattern '{pattern}'",
            {"pattern": KEY_PATTERN},
        )
    return value


def control_character(text: str) -> str | None:
    """A description of the first forbidden control character in text, or None."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    return f"U+{ord(found.group()):04X} at offset {found.start()}"


def _no_controls(value: str) -> str:
    where = control_character(value)
    if where is not None:
        raise PydanticCustomError(
            "control_character",
            "must not contain control characters other than tab, line feed and "
            "carriage return (found {where})",
            {"where": where},
        )
    return value


def _no_nul(value: str) -> str:
    offset = value.find("\x00")
    if offset >= 0:
        raise PydanticCustomError(
            "nul_character",
            "must not contain U+0000 (found at offset {offset}): PostgreSQL text "
            "cannot hold it",
            {"offset": offset},
        )
    return value


# The same rules for JSON Schema (ECMA-262 regex, \\u escapes), so clients,
# generators and fuzzers know them; the validators above give the detail.
NO_CONTROLS_PATTERN = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F]*$"
NO_NUL_PATTERN = r"^[^\u0000]*$"


class Documented:
    """Annotated metadata: a pattern for the JSON Schema only (not validated)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The schema of the type, with the pattern."""
        schema: dict[str, Any] = handler(core_schema)
        schema["pattern"] = self.pattern
        return schema


Key = Annotated[
    str,
    StringConstraints(pattern=KEY_PATTERN),
    AfterValidator(_whole_key),
    Field(description="1-128 of A-Z, a-z, 0-9, '.', '_', ':' and '-', not '.' or '..'"),
]
# Any text both engines store: everything but U+0000, which PostgreSQL's text
# refuses (SQLite would keep it, and `transfer` could then not move the row).
AnyText = Annotated[str, AfterValidator(_no_nul), Documented(NO_NUL_PATTERN)]
# Text people write: no control characters but tab, line feed, carriage return.
Text = Annotated[str, AfterValidator(_no_controls), Documented(NO_CONTROLS_PATTERN)]
