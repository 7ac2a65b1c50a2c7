"""Timestamps: aware UTC datetimes outside db/, naive UTC ones in entities.

Pony stores a datetime without its offset and reads it back naive, so
entities hold naive UTC and records get aware UTC. Raw rows from
db.select() hold what the driver returns; the engine's Dialect turns
those into aware datetimes (dialect.timestamp), so no store parses them.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current moment as entities store it: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def aware(value: datetime) -> datetime:
    """An entity's timestamp (naive UTC) as an aware UTC datetime."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
