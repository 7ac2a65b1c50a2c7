"""Every setting is listed: docs/configuration.md, `serve --help`, --version."""

from __future__ import annotations

import re
from pathlib import Path

from service import __version__
from service.cli import build_parser
from service.config import Settings
from service.settings_doc import setting_rows
from tests.helpers import REPO, run_cli, service_env

_ROW = re.compile(r"^\| `(SERVICE_[A-Z_]+)` \| ([^|]*) \|", re.MULTILINE)


def test_every_field_has_a_row() -> None:
    """setting_rows() covers each Settings field, and each secret's _FILE."""
    variables = [row.variable for row in setting_rows()]
    assert all(f"SERVICE_{name.upper()}" in variables for name in Settings.model_fields)
    assert "SERVICE_ADMIN_TOKEN_FILE" in variables
    assert "SERVICE_DATABASE_URL_FILE" in variables


def test_configuration_doc_lists_every_setting_with_its_default() -> None:
    """docs/configuration.md's table is the model's variables, in order, with defaults."""
    text = (REPO / "docs" / "configuration.md").read_text()
    documented = [(v, d.strip().strip("`")) for v, d in _ROW.findall(text)]
    assert documented == [(row.variable, row.default) for row in setting_rows()]


def test_serve_help_lists_every_setting_with_its_default(tmp_path: Path) -> None:
    """`serve --help` names each variable and its default."""
    result = run_cli("serve", "--help", env=service_env(tmp_path / "db.sqlite3"))
    assert result.returncode == 0
    for row in setting_rows():
        assert f"  {row.variable}  (default: {row.default})\n" in result.stdout


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    """`python -m service --version` prints the installed version and exits 0."""
    result = run_cli("--version", env=service_env(tmp_path / "db.sqlite3"))
    assert result.returncode == 0
    assert result.stdout.strip() == f"service-foundation {__version__}"


def test_description_names_every_command() -> None:
    """The top-level help names every sub-command, transfer included."""
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert "transfer" in commands
    description = parser.description or ""
    assert all(re.search(rf"\b{name}\b", description) for name in commands)
