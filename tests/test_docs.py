"""The docs' commands exist and run as written; their links point at files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.cli import build_parser
from tests.helpers import REPO

PAGES = sorted(
    [REPO / "README.md", REPO / "CONTRIBUTING.md", *(REPO / "docs").glob("*.md")]
)
# `python -m service CMD` as a reader would type it: .venv's Python on the host,
# the image's own python inside the container (docker compose exec / docker run).
COMMAND = re.compile(r"(?P<before>\S*)\s?python3? -m service (?P<command>[a-z][a-z-]*)")
ALLOWED = (".venv/bin/", "service", "IMAGE", "service-foundation")
SCRIPT = re.compile(
    r"(?<![\w/.-])scripts/(?P<name>[a-z][a-z0-9-]*)(?![a-z0-9/-])(?!\.\w)"
)
LINK = re.compile(r"\]\((?P<target>[^)#:\s]+)(#[^)]*)?\)")


def commands() -> set[str]:
    """The CLI's sub-commands."""
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return set(action.choices)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_service_commands_exist_and_name_a_python_that_has_the_package(
    page: Path,
) -> None:
    """Every `python -m service CMD` names a real command, through .venv's Python."""
    known = commands()
    for match in COMMAND.finditer(page.read_text()):
        where = f"{page.name}: {match.group(0)!r}"
        assert match["command"] in known, f"{where}: no such command"
        before = match["before"]
        assert before.endswith(ALLOWED), f"{where}: use .venv/bin/python -m service"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_scripts_and_links_exist(page: Path) -> None:
    """Every scripts/NAME is an executable file; every relative link a file."""
    text = page.read_text()
    for match in SCRIPT.finditer(text):
        script = REPO / "scripts" / match["name"]
        assert script.is_file(), f"{page.name}: scripts/{match['name']} does not exist"
        assert script.stat().st_mode & 0o111, (
            f"scripts/{match['name']} is not executable"
        )
    for match in LINK.finditer(text):
        target = (page.parent / match["target"]).resolve()
        assert target.exists(), f"{page.name}: link to {match['target']} is broken"


def test_the_readme_stays_short() -> None:
    """The README is what a newcomer reads first: about 250 lines at most."""
    assert len((REPO / "README.md").read_text().splitlines()) <= 250
