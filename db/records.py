"""Plain, frozen values the store hands to callers (never Pony entities)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class MetadataRecord:
    """One app_metadata row; updated_at is an aware UTC datetime."""

    key: str
    value: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MetadataPage:
    """A page of metadata ordered by key; next is the cursor or None."""

    items: list[MetadataRecord]
    next: str | None


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """A row of the schema_migrations history table."""

    version: int
    name: str
    checksum: str
    applied_at: str
    execution_ms: float


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where the database stands against the migration files."""

    version: int | None
    applied: list[int]
    pending: list[int]
    unknown: list[int]
    edited: list[int]

    @property
    def clean(self) -> bool:
        """True when nothing is pending or edited."""
        return not self.pending and not self.edited
