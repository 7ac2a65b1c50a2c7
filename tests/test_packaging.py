"""Packaging metadata: what the installed distribution says about itself."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from typing import Any

import pytest

import service
from tests.helpers import REPO


def _pyproject() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def test_license_is_an_spdx_expression_with_its_file() -> None:
    """The wheel declares License-Expression MIT and ships LICENSE (PEP 639)."""
    meta = metadata.metadata("service-foundation")
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert "MIT License" in (REPO / "LICENSE").read_text()


def test_version_has_one_source() -> None:
    """service.__version__ and the installed metadata both come from pyproject.toml."""
    version = _pyproject()["project"]["version"]
    assert metadata.version("service-foundation") == version
    assert service.__version__ == version
    source = (REPO / "service" / "__init__.py").read_text()
    assert version not in source


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel `uv build` makes from this tree (offline: the lock's setuptools)."""
    uv = REPO / "scripts" / "uv"
    if not uv.exists():
        pytest.skip("no scripts/uv here (the Nix build copies only the package)")
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    for package in ("service", "db", "schema_migrations"):
        shutil.copytree(
            REPO / package,
            source / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    subprocess.run(
        [
            uv,
            "build",
            "--wheel",
            "--offline",
            "--quiet",
            "--out-dir",
            folder / "dist",
            source,
        ],
        check=True,
        timeout=300,
    )
    [built] = (folder / "dist").glob("*.whl")
    return zipfile.ZipFile(built)


def _metadata(wheel: zipfile.ZipFile) -> list[str]:
    [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return wheel.read(name).decode().splitlines()


def test_wheel_ships_py_typed_for_both_packages(wheel: zipfile.ZipFile) -> None:
    """PEP 561: the wheel that says Typing :: Typed carries service/ and db/ py.typed."""
    assert {"service/py.typed", "db/py.typed"} <= set(wheel.namelist())
    assert "Classifier: Typing :: Typed" in _metadata(wheel)


def test_psycopg2_comes_only_with_the_postgres_extra(wheel: zipfile.ZipFile) -> None:
    """`pip install .` brings no psycopg2; `.[postgres]` does (and the test extra)."""
    requires = [
        line.removeprefix("Requires-Dist: ")
        for line in _metadata(wheel)
        if line.startswith("Requires-Dist: ")
    ]
    drivers = [r for r in requires if r.startswith("psycopg2")]
    assert drivers == ['psycopg2-binary>=2.9; extra == "postgres"']
    assert "Provides-Extra: postgres" in _metadata(wheel)
    assert 'service-foundation[postgres]; extra == "test"' in requires


def test_classifiers_name_the_python_running_the_suite() -> None:
    """CI runs the suite on each Python it supports (3.11, 3.13): each is declared."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    classifiers = _pyproject()["project"]["classifiers"]
    assert f"Programming Language :: Python :: {running}" in classifiers
    declared = {
        c.rsplit(" :: ", 1)[1]
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    minimum = _pyproject()["project"]["requires-python"].removeprefix(">=")
    assert min(declared, key=lambda v: tuple(map(int, v.split(".")))) == minimum
