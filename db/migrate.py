"""The migration runner's public names, where callers have always found them.

The implementation lives in the db.migrations package; see its modules.
"""

from __future__ import annotations

from db.engines import migration_backend as backend_for
from db.engines.base.migration import HISTORY_TABLE, LOG_TABLE
from db.migrations.files import (
    CHECKSUM_ALGORITHM,
    FILE_PATTERN,
    Migration,
    catalog,
    checksum,
    default_source,
    discover,
    next_stem,
    normalise,
    read_migration,
)
from db.migrations.history import SchemaState, log, state
from db.migrations.runner import accept_checksum, inspect, migrate

__all__ = [
    "CHECKSUM_ALGORITHM",
    "FILE_PATTERN",
    "HISTORY_TABLE",
    "LOG_TABLE",
    "Migration",
    "SchemaState",
    "accept_checksum",
    "backend_for",
    "catalog",
    "checksum",
    "default_source",
    "discover",
    "inspect",
    "log",
    "migrate",
    "next_stem",
    "normalise",
    "read_migration",
    "state",
]
