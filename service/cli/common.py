"""Exit codes and helpers the command modules share."""

from __future__ import annotations

from db import migrate as migrations
from service.config import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_PENDING = 3
EXIT_EDITED = 4
# Stopped by signal N before serving: 128 + N, as a shell reports it (143: SIGTERM).
EXIT_SIGNAL_BASE = 128


def found_migrations(settings: Settings) -> list[migrations.Migration]:
    """The migration files the settings point at, read and checked."""
    return migrations.discover(settings.migrations_path, settings.target.dialect)
