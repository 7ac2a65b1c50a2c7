"""Every query the service runs; each runs inside the caller's db_session."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from pony import orm

from db import session
from db.dialects.sqlite import from_stored, to_stored
from db.errors import NotFoundError
from db.records import MetadataPage, MetadataRecord


class Store:
    """Queries and changes on the mapped entities; returns records only.

    Single-row reads and writes on the request path run their SQL on the
    unit of work's connection (db.session.connection): loading an entity
    costs Pony several times the query itself (identity map, per-attribute
    validation, strptime of the timestamp), and its raw db.select() builds
    a row class per call. Writes stay inside the caller's immediate
    db_session, so the transaction, the rollback on error, the write lock
    and the connection PRAGMAs are those of entity code. Listing uses the
    entities.
    """

    def __init__(self, orm_db: orm.Database, entities: dict[str, Any]) -> None:
        self._db = orm_db
        self._metadata = entities["AppMetadata"]

    def _connection(self) -> sqlite3.Connection:
        return session.connection(self._db)

    def get_metadata(self, key: str) -> MetadataRecord:
        """The metadata entry called key; NotFoundError when absent."""
        row = (
            self._connection()
            .execute("SELECT value, updated_at FROM app_metadata WHERE key = ?", (key,))
            .fetchone()
        )
        if row is None:
            raise NotFoundError(f"no metadata entry with key {key!r}")
        return MetadataRecord(key, row[0], from_stored(row[1]))

    def put_metadata(self, key: str, value: str) -> tuple[MetadataRecord, bool]:
        """Create or replace an entry; returns it and whether it was created."""
        now = datetime.now(UTC)
        stored = to_stored(now)
        con = self._connection()
        updated = con.execute(
            "UPDATE app_metadata SET value = ?, updated_at = ? WHERE key = ?",
            (value, stored, key),
        ).rowcount
        if not updated:
            con.execute(
                "INSERT INTO app_metadata (key, value, updated_at) VALUES (?, ?, ?)",
                (key, value, stored),
            )
        return MetadataRecord(key, value, now), not updated

    def delete_metadata(self, key: str) -> None:
        """Delete an entry; NotFoundError when absent."""
        deleted = (
            self._connection()
            .execute("DELETE FROM app_metadata WHERE key = ?", (key,))
            .rowcount
        )
        if not deleted:
            raise NotFoundError(f"no metadata entry with key {key!r}")

    def list_metadata(self, limit: int, after: str | None) -> MetadataPage:
        """Entries ordered by key, starting after the cursor key."""
        session.require_orm_session()
        entity = self._metadata
        query = entity.select()
        if after is not None:
            query = query.filter(lambda m: m.key > after)
        rows = query.order_by(entity.key)[: limit + 1]
        items = [
            MetadataRecord(r.key, r.value, r.updated_at.replace(tzinfo=UTC))
            for r in rows[:limit]
        ]
        more = len(rows) > limit
        return MetadataPage(items, items[-1].key if more and items else None)

    def applied_versions(self) -> dict[int, str]:
        """Applied migration versions with their checksums."""
        session.require_orm_session()
        rows = self._db.select("SELECT version, checksum FROM schema_migrations")
        return {int(version): str(checksum) for version, checksum in rows}
