"""`pip install .` without the postgres extra: SQLite works, PostgreSQL says what to add.

The processes here run on a copy of the test environment's site-packages
with psycopg2 left out (`python -S` with that copy on PYTHONPATH), which
is what an install without `service-foundation[postgres]` has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, service_env, start_serve


@pytest.fixture(scope="session")
def without_driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site-packages of links to the test environment's, psycopg2 left out."""
    import falcon  # any installed package: it lives in the site-packages to copy

    site = Path(falcon.__file__).resolve().parents[1]
    if not (site / "pony").is_dir():
        pytest.skip("not a single site-packages (Nix keeps each package apart)")
    folder = tmp_path_factory.mktemp("no-psycopg2")
    for entry in site.iterdir():
        if not entry.name.lower().startswith("psycopg2"):
            (folder / entry.name).symlink_to(entry)
    return folder


def _env(folder: Path, database: Path, **settings: str) -> dict[str, str]:
    env = service_env(database, **settings)
    env["PYTHONPATH"] = f"{folder}{os.pathsep}{REPO}"
    return env


def _python(*args: str) -> list[str]:
    # -S: no site module, so only PYTHONPATH's copy provides packages.
    return [sys.executable, "-S", *args]


def test_the_copy_has_no_driver(without_driver: Path, tmp_path: Path) -> None:
    """In the copy, `import psycopg2` fails as it does where it was never installed."""
    result = subprocess.run(
        _python("-c", "import psycopg2"),
        env=_env(without_driver, tmp_path / "db.sqlite3"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "No module named 'psycopg2'" in result.stderr


def test_serves_sqlite_without_psycopg2(without_driver: Path, tmp_path: Path) -> None:
    """serve migrates and answers on SQLite, and service.wsgi imports, without psycopg2."""
    env = _env(without_driver, tmp_path / "db.sqlite3")
    server = start_serve(env, command=_python("-m", "service", "serve"))
    try:
        assert server.request("PUT", "/v1/metadata/k", {"value": "v"})[0] == 201
        status, _, body = server.request("GET", "/v1/metadata/k")
        assert (status, body["value"]) == (200, "v")
    finally:
        assert server.stop() == 0
    probe = "import sys, service.wsgi; print(json.dumps(sorted(sys.modules)))"
    imported = subprocess.run(
        _python("-c", f"import json; {probe}"),
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    modules = json.loads(imported.stdout.splitlines()[-1])
    assert "service.app" in modules
    assert not [m for m in modules if m.startswith("psycopg2")]


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_postgres_without_psycopg2_is_one_line_naming_the_extra(
    without_driver: Path, tmp_path: Path, command: str
) -> None:
    """SERVICE_DATABASE_URL without the driver: exit 2, one line naming the extra."""
    url = "postgresql://service:s3cret-pw@127.0.0.1:1/service"
    env = _env(without_driver, tmp_path / "db.sqlite3")
    del env["SERVICE_DATABASE_PATH"]
    env["SERVICE_DATABASE_URL"] = url
    result = subprocess.run(
        _python("-m", "service", command),
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith("configuration error: SERVICE_DATABASE_URL: ")
    assert "pip install 'service-foundation[postgres]'" in lines[0]
    assert "s3cret-pw" not in result.stderr


def test_tools_that_check_postgres_name_the_extra(
    without_driver: Path, tmp_path: Path
) -> None:
    """makemigration --check on an SQLite-only install: one line naming the extra."""
    result = subprocess.run(
        _python("-m", "service", "makemigration", "--check"),
        env=_env(without_driver, tmp_path / "db.sqlite3"),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = json.loads(result.stderr.splitlines()[-1])
    assert "pip install 'service-foundation[postgres]'" in last["message"]
