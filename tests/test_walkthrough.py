"""docs/endpoint.md's walkthroughs, each applied to a copy of the project, work."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import LATEST, REPO

pytestmark = pytest.mark.slow

MARKER = re.compile(
    r'<!-- walkthrough (?P<name>\w+): (?P<path>\S+) (?:new|before "(?P<before>[^"]+)") -->\n'
    r"```python\n(?P<code>.*?)```",
    re.DOTALL,
)


def git(folder: Path, *args: str) -> str:
    """Run git in folder; its output."""
    return subprocess.run(
        ["git", *args], cwd=folder, check=True, capture_output=True, text=True
    ).stdout


def apply(page: str, name: str, project: Path) -> list[str]:
    """Apply the walkthrough's marked code blocks to project; the paths touched."""
    touched = []
    for step in MARKER.finditer(page):
        if step["name"] != name:
            continue
        target = project / step["path"]
        if step["before"] is None:
            assert not target.exists(), f"{step['path']} exists already"
            target.write_text(step["code"])
        else:
            text = target.read_text()
            assert step["before"] in text, f"{step['before']!r} not in {step['path']}"
            target.write_text(
                text.replace(step["before"], step["code"] + step["before"], 1)
            )
        if step["path"] not in touched:
            touched.append(step["path"])
    return touched


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """python ARGS in the copy, importing the copy's code."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(project), "HOME": str(project)},
    )


def copy_of_the_project(folder: Path) -> Path:
    """The tracked files of the repository, committed in a new repository."""
    project = folder / "project"
    for name in git(REPO, "ls-files").splitlines():
        source = REPO / name
        if source.is_file():
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, project / name)
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "base")
    return project


def follow(folder: Path, name: str, files: list[str], tests: list[str]) -> None:
    """Apply walkthrough name; makemigration, then tests, pass; only files changed.

    Besides the files the user edits, the only changes are the migration's
    two halves, numbered after the newest shipped one.
    """
    project = copy_of_the_project(folder)
    page = (REPO / "docs" / "endpoint.md").read_text()
    assert apply(page, name, project) == files
    made = run(project, "-m", "service", "makemigration", f"add_{name}")
    assert made.returncode == 0, made.stdout + made.stderr
    tested = run(project, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]
    changed = sorted(
        line[3:]
        for line in git(
            project, "status", "--porcelain", "--untracked-files=all"
        ).splitlines()
    )
    written = f"schema_migrations/{LATEST + 1:04d}_add_{name}."
    assert changed == sorted(
        [*files, f"{written}postgres.sql", f"{written}sqlite.sql"]
    ), changed


@pytest.mark.timeout(900)
def test_the_crud_walkthrough_adds_tags_in_five_files(tmp_path: Path) -> None:
    """Tags: three files edited, two written by makemigration; their tests pass."""
    follow(
        tmp_path,
        "tags",
        ["db/domain/entities.py", "service/resources/tags.py", "tests/test_tags.py"],
        [
            "tests/test_tags.py",
            "tests/test_openapi.py",
            "tests/db/schema/test_check.py",
        ],
    )


@pytest.mark.timeout(900)
def test_the_rules_walkthrough_adds_reactions_in_four_files_and_a_migration(
    tmp_path: Path,
) -> None:
    """Reactions: entity, store, resource, test edited; the migration written; green."""
    follow(
        tmp_path,
        "reactions",
        [
            "db/domain/entities.py",
            "db/domain/reactions.py",
            "service/resources/reactions.py",
            "tests/test_reactions.py",
        ],
        [
            "tests/test_reactions.py",
            "tests/test_openapi.py",
            "tests/db/schema/test_check.py",
        ],
    )
