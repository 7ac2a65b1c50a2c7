"""What every engine's backup shares: moving a finished copy into place.

A backup is written to a temporary file of its own beside the target
(two backups never share one), verified, and only then moved into place:
replaced with --force, otherwise linked, so that of two backups racing
to one new name exactly one wins. A filesystem without hard links (EPERM,
EOPNOTSUPP; EXDEV across a bind mount) gets a check and a rename.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from db.errors import DatabaseError


def move_into_place(
    partial: Path,
    final: Path,
    *,
    force: bool,
    refused: type[DatabaseError],
) -> None:
    """Move the verified copy at partial to final; refused(...) if final appeared."""
    if force:
        os.replace(partial, final)
        return
    appeared = f"backup target {final} appeared meanwhile; pass --force to replace it"
    try:
        # link() never replaces: of two backups racing to one new name, one wins.
        os.link(partial, final)
    except FileExistsError as ex:
        raise refused(appeared) from ex
    except OSError as ex:
        if ex.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # A filesystem without hard links: check, then rename (a small race).
        if final.exists():
            raise refused(appeared) from ex
        os.replace(partial, final)
