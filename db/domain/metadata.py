"""App metadata: the operator's key/value pairs, through the AppMetadata entity."""

from __future__ import annotations

from typing import Any

from pony import orm

from db.domain.records import MetadataPage, MetadataRecord
from db.domain.timestamps import aware
from db.engines.base.operations import Dialect
from db.errors import NotFoundError


def _record(row: Any) -> MetadataRecord:
    return MetadataRecord(row.key, row.value, aware(row.updated_at))


class Metadata:
    """Get, put, delete and page app_metadata entries; returns records only.

    Runs inside the caller's db_session (a request's, or writing()).
    """

    def __init__(
        self, orm_db: orm.Database, entities: dict[str, Any], dialect: Dialect
    ) -> None:
        self._db = orm_db
        self._entry = entities["AppMetadata"]
        self._dialect = dialect

    def get(self, key: str) -> MetadataRecord:
        """The entry called key; NotFoundError when absent.

        A read-only row, so a raw one (db.select): loading the entity
        costs Pony several times the query (profiled on GET one key).
        """
        rows = self._db.select(
            "SELECT value, updated_at FROM app_metadata WHERE key = $key",
            {"key": key},
        )
        if not rows:
            raise NotFoundError(f"no metadata entry with key {key!r}")
        value, updated_at = rows[0]
        return MetadataRecord(key, value, self._dialect.timestamp(updated_at))

    def put(self, key: str, value: str) -> tuple[MetadataRecord, bool]:
        """Create or replace an entry; returns it and whether it was created."""
        # Two writers creating one new key: the second waits for the first
        # (a no-op on SQLite, where writers already take turns). The stamp
        # is the database's clock once the lock is held, so updated_at
        # follows the order of the writes whichever host makes them.
        stamp = self._dialect.lock_key(self._db, "app_metadata", key)
        row = self._entry.get_for_update(key=key)
        if row is None:
            row = self._entry(key=key, value=value, updated_at=stamp)
            return _record(row), True
        # Never back in time, even if the clock is.
        row.set(value=value, updated_at=max(stamp, row.updated_at))
        return _record(row), False

    def delete(self, key: str) -> None:
        """Delete an entry; NotFoundError when absent."""
        row = self._entry.get_for_update(key=key)
        if row is None:
            raise NotFoundError(f"no metadata entry with key {key!r}")
        row.delete()

    def page(self, limit: int, after: str | None) -> MetadataPage:
        """Entries ordered by key, starting after the cursor key."""
        entry = self._entry
        query = orm.select(m for m in entry)
        if after is not None:
            query = query.where(lambda m: m.key > after)
        rows = query.order_by(entry.key)[: limit + 1]
        items = [_record(r) for r in rows[:limit]]
        more = len(rows) > limit
        return MetadataPage(items, items[-1].key if more and items else None)
