"""Create, read, page, change and delete rows of one entity: a resource's store.

A small resource (tags, categories, settings) often needs nothing but
these five operations. Crud gives them for any entity with an integer
`id` primary key, through Pony: entities are created, set and deleted (so
Pony's validation, defaults, relations and cascades apply), pages are a
generator query ordered by id. What comes out is a plain dict per row
(the entity's to_dict(), timestamps as aware UTC datetimes), never an
entity. A resource with its own rules gets a domain module instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pony import orm

from db.domain.timestamps import aware
from db.errors import ConflictError, NotFoundError

Row = dict[str, Any]


def _row(entity: Any) -> Row:
    return {
        name: aware(value) if isinstance(value, datetime) else value
        for name, value in entity.to_dict().items()
    }


class Crud:
    """The five operations on one entity; runs inside the caller's db_session."""

    def __init__(self, entity: Any) -> None:
        self._entity = entity
        self._name = entity.__name__.lower()

    def _one(self, row_id: int, *, for_update: bool = False) -> Any:
        find = self._entity.get_for_update if for_update else self._entity.get
        found = find(id=row_id)
        if found is None:
            raise NotFoundError(f"no {self._name} {row_id}")
        return found

    def create(self, **values: Any) -> Row:
        """A new row; ConflictError when it collides with a stored one (unique)."""
        created = self._entity(**values)
        try:
            created.flush()  # the id, and any unique collision, now
        except orm.TransactionIntegrityError as ex:
            raise ConflictError(f"a {self._name} with these values exists") from ex
        return _row(created)

    def get(self, row_id: int) -> Row:
        """The row with this id; NotFoundError when there is none."""
        return _row(self._one(row_id))

    def page(self, limit: int, after: int = 0) -> tuple[list[Row], int | None]:
        """Rows by id after the cursor id; returns them and the next cursor."""
        found = (
            self._entity.select(lambda e: e.id > after)
            .order_by(lambda e: e.id)
            .limit(limit + 1)
        )
        rows = [_row(e) for e in found]
        more = len(rows) > limit
        return rows[:limit], rows[limit - 1]["id"] if more else None

    def update(self, row_id: int, **values: Any) -> Row:
        """Change some attributes of a row; NotFoundError, ConflictError."""
        found = self._one(row_id, for_update=True)
        found.set(**values)
        try:
            found.flush()
        except orm.TransactionIntegrityError as ex:
            raise ConflictError(f"a {self._name} with these values exists") from ex
        return _row(found)

    def delete(self, row_id: int) -> None:
        """Delete a row (and what cascades with it); NotFoundError when absent."""
        self._one(row_id, for_update=True).delete()
