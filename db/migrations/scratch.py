"""Scratch databases: where files are applied to see what they create.

`check`, `baseline` and `makemigration` build the schema the migration
files produce by running the runner itself on a scratch database of the
same engine, never on the live one. SQLite: a file in a temporary folder.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from db.target import DatabaseTarget, SqliteTarget


@contextlib.contextmanager
def scratch_like(target: DatabaseTarget | Path) -> Iterator[DatabaseTarget]:
    """An empty database of target's engine, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="migrations-scratch-") as folder:
        yield SqliteTarget(Path(folder) / "scratch.sqlite3")
