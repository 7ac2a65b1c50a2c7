"""Every setting as (variable, default, meaning): for `serve --help` and the docs.

Read from the Settings model, so neither can leave one out;
tests/test_settings_doc.py holds docs/configuration.md to the same list.
"""

from __future__ import annotations

import textwrap
from typing import Any, NamedTuple

from pydantic_core import PydanticUndefined

from service.config import FILE_FIELDS, Settings, file_variable, variable

# Defaults that are not a literal value in the model.
_SHOWN_DEFAULTS = {
    "database_path": "var/service.sqlite3",
    "migrations_path": "the packaged files",
    "cors_origins": "unset",
}


class SettingRow(NamedTuple):
    """One environment variable the service reads."""

    variable: str
    default: str
    meaning: str


def _default(name: str, default: Any) -> str:
    if name in _SHOWN_DEFAULTS:
        return _SHOWN_DEFAULTS[name]
    if default is None or default is PydanticUndefined:
        return "unset"
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def _ordered() -> list[str]:
    """Settings' own fields in order, then those of its parts (EventSettings)."""
    own = [n for n in Settings.model_fields if n in Settings.__annotations__]
    return own + [n for n in Settings.model_fields if n not in own]


def setting_rows() -> list[SettingRow]:
    """Every variable, in the model's order; each secret's _FILE after it."""
    rows = []
    for name in _ordered():
        field = Settings.model_fields[name]
        rows.append(
            SettingRow(
                variable(name), _default(name, field.default), field.description or ""
            )
        )
        if name in FILE_FIELDS:
            rows.append(
                SettingRow(
                    file_variable(name),
                    "unset",
                    f"file holding {variable(name)} (a Docker or Kubernetes secret), "
                    "read once at start; set one of the two",
                )
            )
    return rows


def help_text(width: int = 88) -> str:
    """The settings as `serve --help` lists them."""
    lines = ["settings (environment variables; empty counts as unset):"]
    for row in setting_rows():
        lines.append(f"  {row.variable}  (default: {row.default})")
        lines += textwrap.wrap(
            row.meaning, width, initial_indent="      ", subsequent_indent="      "
        )
    return "\n".join(lines)
