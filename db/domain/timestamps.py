"""Timestamps: aware UTC datetimes outside db/, naive UTC ones in entities.

Pony stores a datetime without its offset (on SQLite as text, on
PostgreSQL as TIMESTAMP) and reads it back naive, so entities hold naive
UTC and records get aware UTC. Raw rows from db.select() hold what the
driver returns: text on SQLite, datetime on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

from db.engines.sqlite.connection import from_stored


def now() -> datetime:
    """The current moment as entities store it: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def aware(value: datetime | str) -> datetime:
    """A stored timestamp (entity value or raw column) as an aware UTC datetime."""
    if isinstance(value, str):
        return from_stored(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
