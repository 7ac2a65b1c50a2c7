""".ci/check_junit.py fails a CI run whose PostgreSQL or Docker tests did not run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

CHECK = REPO / ".ci" / "check_junit.py"
# What tests/conftest.py's postgres fixture says when the server binaries are missing.
NO_SERVER = "PostgreSQL server binaries not found (apt-get install postgresql)"

ENGINE_TEST = f'''
import pytest

@pytest.mark.parametrize("engine_name", ["sqlite", "postgres"])
@pytest.mark.parametrize("limit", [0, 1])
def test_api(engine_name, limit):
    """Stands for a test parametrized by engine."""
    if engine_name == "postgres" and {{skip}}:
        pytest.skip({NO_SERVER!r})

@pytest.mark.xfail(strict=True, reason="a known PostgreSQL bug")
def test_known_bug():
    """Stands for an expected failure: it ran, it was not skipped."""
    assert False

def test_transfer():
    """Stands for a test that takes pg_url, with no engine parameter."""
    if {{skip_transfer}}:
        pytest.skip({NO_SERVER!r})
'''
TOOL_TEST = '''
import pytest

def test_promtool():
    """Stands for a test that needs a tool .ci/run installs."""
    pytest.skip("promtool not found (apt-get install prometheus)")
'''
INTEGRATION_TEST = '''
def test_image():
    """Stands for a Docker test."""
'''


def junit_of(
    tmp_path: Path, *, skip: bool, skip_transfer: bool = False, skip_tool: bool = False
) -> Path:
    """Run a small suite shaped like ours with real pytest; its JUnit report."""
    suite = tmp_path / "suite"
    (suite / "tests" / "integration").mkdir(parents=True)
    for package in (suite / "tests", suite / "tests" / "integration"):
        (package / "__init__.py").write_text("")
    (suite / "tests" / "test_api.py").write_text(
        ENGINE_TEST.format(skip=skip, skip_transfer=skip_transfer)
    )
    (suite / "tests" / "integration" / "test_image.py").write_text(INTEGRATION_TEST)
    if skip_tool:
        (suite / "tests" / "test_tool.py").write_text(TOOL_TEST)
    report = tmp_path / "junit.xml"
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests", f"--junitxml={report}"],
        cwd=suite,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return report


def check(report: Path) -> subprocess.CompletedProcess[str]:
    """Run .ci/check_junit.py on report."""
    return subprocess.run(
        [sys.executable, str(CHECK), str(report)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_run_with_every_postgres_test_skipped_fails(tmp_path: Path) -> None:
    """pytest is green, but every PostgreSQL test skipped: the CI check exits 1 saying so."""
    result = check(junit_of(tmp_path, skip=True, skip_transfer=True))
    assert result.returncode == 1
    assert "0 PostgreSQL tests ran" in result.stdout
    assert "no PostgreSQL test ran" in result.stderr
    assert "skipped for want of PostgreSQL" in result.stderr


def test_a_run_with_one_postgres_test_skipped_fails(tmp_path: Path) -> None:
    """The engine-parametrized tests ran but a pg_url test skipped: still a failure."""
    result = check(junit_of(tmp_path, skip=False, skip_transfer=True))
    assert result.returncode == 1
    assert "2 PostgreSQL tests ran" in result.stdout
    assert "1 test(s) skipped for want of PostgreSQL" in result.stderr
    assert "test_transfer" in result.stderr


def test_a_run_where_postgres_tests_ran_passes(tmp_path: Path) -> None:
    """Every test ran (an expected failure too), on both engines and in Docker: passes."""
    result = check(junit_of(tmp_path, skip=False))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "CI: 7 tests, 7 ran, 1 integration tests ran, 2 PostgreSQL tests ran"
    )
    assert result.stderr == ""


def test_a_run_with_a_tool_test_skipped_fails(tmp_path: Path) -> None:
    """A test skipped because promtool is missing: CI installs it, so that fails."""
    result = check(junit_of(tmp_path, skip=False, skip_tool=True))
    assert result.returncode == 1
    assert "1 test(s) skipped for want of a tool .ci/run installs" in result.stderr
    assert "test_promtool" in result.stderr
