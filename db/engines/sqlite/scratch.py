"""SQLite scratch databases: a file in a temporary folder of its own."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from db.target import DatabaseTarget, SqliteTarget


class FileScratch:
    """Scratch databases as files, each in a temporary folder removed after it."""

    @contextlib.contextmanager
    def database(self) -> Iterator[DatabaseTarget]:
        """A file that does not exist yet (the runner creates it)."""
        with tempfile.TemporaryDirectory(prefix="migrations-scratch-") as folder:
            yield SqliteTarget(Path(folder) / "scratch.sqlite3")
