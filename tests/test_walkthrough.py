"""docs/endpoint.md, applied to a copy of the project, works and touches five files."""

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
    r'<!-- walkthrough: (?P<path>\S+) (?:new|before "(?P<before>[^"]+)") -->\n'
    r"```python\n(?P<code>.*?)```",
    re.DOTALL,
)


def git(folder: Path, *args: str) -> str:
    """Run git in folder; its output."""
    return subprocess.run(
        ["git", *args], cwd=folder, check=True, capture_output=True, text=True
    ).stdout


def apply(page: str, project: Path) -> list[str]:
    """Apply every marked code block of page to project; the paths touched."""
    touched = []
    for step in MARKER.finditer(page):
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


@pytest.mark.timeout(900)
def test_the_walkthrough_adds_tags_in_five_files(tmp_path: Path) -> None:
    """Following docs/endpoint.md: makemigration, the new test and the OpenAPI checks pass."""
    project = tmp_path / "project"
    for name in git(REPO, "ls-files").splitlines():
        source = REPO / name
        if source.is_file():
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, project / name)
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "base")

    page = (REPO / "docs" / "endpoint.md").read_text()
    touched = apply(page, project)
    assert touched == [
        "db/domain/entities.py",
        "service/resources/tags.py",
        "tests/test_tags.py",
    ]
    made = run(project, "-m", "service", "makemigration", "add_tags")
    assert made.returncode == 0, made.stdout + made.stderr
    tested = run(
        project,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/test_tags.py",
        "tests/test_openapi.py",
        "tests/db/schema/test_check.py",
    )
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]
    changed = git(
        project, "status", "--porcelain", "--untracked-files=all"
    ).splitlines()
    assert 3 < len(changed) <= 5, changed
    # makemigration numbers the file after the newest shipped one.
    written = f"schema_migrations/{LATEST + 1:04d}_add_tags."
    assert all(written in line or line[3:] in touched for line in changed), changed
