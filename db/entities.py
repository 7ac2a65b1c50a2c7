"""Pony entities mirroring the SQL schema; every name is pinned."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pony import orm


def define_entities(db: orm.Database) -> dict[str, Any]:
    """Declare the entities on db and return them by name."""

    class AppMetadata(db.Entity):
        _table_ = "app_metadata"
        key = orm.PrimaryKey(str, column="key", autostrip=False)
        # Optional(str) is NOT NULL in SQL and, unlike Required, accepts "".
        value = orm.Optional(str, column="value", autostrip=False)
        # Naive UTC: Pony reads aware datetimes back naive on SQLite.
        updated_at = orm.Required(datetime, column="updated_at")

    return {"AppMetadata": AppMetadata}
