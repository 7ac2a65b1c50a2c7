"""Packaging metadata: what the installed distribution says about itself."""

from __future__ import annotations

import tomllib
from importlib import metadata
from typing import Any

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
