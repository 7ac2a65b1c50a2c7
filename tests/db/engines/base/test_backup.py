"""Moving a finished backup into place: one way, for every engine's backup.

A filesystem without hard links cannot be mounted here (no vfat, no FUSE
in the kernel's list), so os.link is made to fail the way one fails.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from db.engines.base.backup import move_into_place
from db.errors import DatabaseError


class RefusedError(DatabaseError):
    """The error a backup raises for a refused target."""


def _partial(tmp_path: Path) -> Path:
    partial = tmp_path / ".target.partial"
    partial.write_text("copy")
    return partial


def test_the_copy_is_linked_into_place(tmp_path: Path) -> None:
    """A new target gets the copy; the partial file is left for the caller to remove."""
    final = tmp_path / "target"
    move_into_place(_partial(tmp_path), final, force=False, refused=RefusedError)
    assert final.read_text() == "copy"


def test_a_target_that_appeared_meanwhile_is_refused(tmp_path: Path) -> None:
    """Of two backups racing to one new name, the second is refused, not replacing."""
    final = tmp_path / "target"
    final.write_text("first")
    with pytest.raises(RefusedError, match="appeared meanwhile"):
        move_into_place(_partial(tmp_path), final, force=False, refused=RefusedError)
    assert final.read_text() == "first"


def test_force_replaces_the_target(tmp_path: Path) -> None:
    """--force replaces an existing target."""
    final = tmp_path / "target"
    final.write_text("old")
    move_into_place(_partial(tmp_path), final, force=True, refused=RefusedError)
    assert final.read_text() == "copy"


@pytest.mark.parametrize("code", [errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV])
def test_a_filesystem_without_hard_links_gets_a_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """Where link() is refused (EPERM, EOPNOTSUPP, EXDEV), the copy is renamed into place."""

    def no_links(source: object, target: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", no_links)
    final = tmp_path / "target"
    move_into_place(_partial(tmp_path), final, force=False, refused=RefusedError)
    assert final.read_text() == "copy"
    final.write_text("first")
    with pytest.raises(RefusedError, match="appeared meanwhile"):
        move_into_place(_partial(tmp_path), final, force=False, refused=RefusedError)
