"""Scratch databases: where files are applied to see what they create.

`check`, `baseline`, the lint and `makemigration` build the schema the
migration files produce by running the runner itself on a scratch
database of the same engine, never on the live one. Each engine says
where its scratch databases come from (db.engines.scratch_source).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from db.engines import scratch_source
from db.target import DatabaseTarget, SqliteTarget


@contextlib.contextmanager
def scratch_like(target: DatabaseTarget | Path) -> Iterator[DatabaseTarget]:
    """An empty database of target's engine (and server), removed afterwards."""
    if isinstance(target, Path):
        target = SqliteTarget(target)
    with scratch_source(target.dialect, target) as source, source.database() as db:
        yield db
