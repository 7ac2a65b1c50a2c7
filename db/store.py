"""Every query the service runs; each runs inside the caller's db_session."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pony import orm

from db.errors import NotFoundError
from db.records import MetadataPage, MetadataRecord


def _utc(naive: datetime) -> datetime:
    return naive.replace(tzinfo=UTC)


class Store:
    """Queries and changes on the mapped entities; returns records only."""

    def __init__(self, orm_db: orm.Database, entities: dict[str, Any]) -> None:
        self._db = orm_db
        self._metadata = entities["AppMetadata"]

    def _record(self, row: Any) -> MetadataRecord:
        return MetadataRecord(row.key, row.value, _utc(row.updated_at))

    def get_metadata(self, key: str) -> MetadataRecord:
        """The metadata entry called key; NotFoundError when absent."""
        row = self._metadata.get(key=key)
        if row is None:
            raise NotFoundError(f"no metadata entry with key {key!r}")
        return self._record(row)

    def put_metadata(self, key: str, value: str) -> tuple[MetadataRecord, bool]:
        """Create or replace an entry; returns it and whether it was created."""
        now = datetime.now(UTC).replace(tzinfo=None)
        row = self._metadata.get(key=key)
        if row is None:
            row = self._metadata(key=key, value=value, updated_at=now)
            return self._record(row), True
        row.set(value=value, updated_at=now)
        return self._record(row), False

    def delete_metadata(self, key: str) -> None:
        """Delete an entry; NotFoundError when absent."""
        row = self._metadata.get(key=key)
        if row is None:
            raise NotFoundError(f"no metadata entry with key {key!r}")
        row.delete()

    def list_metadata(self, limit: int, after: str | None) -> MetadataPage:
        """Entries ordered by key, starting after the cursor key."""
        entity = self._metadata
        query = entity.select()
        if after is not None:
            query = query.filter(lambda m: m.key > after)
        rows = query.order_by(entity.key)[: limit + 1]
        items = [self._record(row) for row in rows[:limit]]
        more = len(rows) > limit
        return MetadataPage(items, items[-1].key if more and items else None)

    def applied_versions(self) -> dict[int, str]:
        """Applied migration versions with their checksums."""
        rows = self._db.select("SELECT version, checksum FROM schema_migrations")
        return {int(version): str(checksum) for version, checksum in rows}
