"""What the domain code asks of SQLite: bounded reads, timestamps as stored text."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Literal

from db.engines.base.operations import Row, parse_timestamp, timestamp_text
from db.engines.sqlite.budget import deadline
from db.errors import BudgetExceededError


def timestamp(raw: Any) -> datetime:
    """A raw timestamp column (the text Pony stores) as an aware UTC datetime."""
    if isinstance(raw, str):
        return parse_timestamp(raw)
    moment: datetime = raw
    return (
        moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    )


class SqliteDialect:
    """What the domain code asks of SQLite."""

    name: Literal["sqlite"] = "sqlite"
    # Writers already take turns (BEGIN IMMEDIATE): a plain read is current.
    guard_lock: str = ""

    def lock_key(self, orm_db: Any, *key: object) -> datetime:
        """Nothing to lock (BEGIN IMMEDIATE made writers take turns); the time."""
        return datetime.now(UTC).replace(tzinfo=None)

    def now(self, orm_db: Any) -> datetime:
        """The machine's clock (naive UTC): every process on the file shares it."""
        return datetime.now(UTC).replace(tzinfo=None)

    def before_event(self, orm_db: Any, notify: bool) -> datetime:
        """The machine's clock: ids follow commit order; readers watch data_version."""
        return self.now(orm_db)

    def bounded_select(
        self, orm_db: Any, sql: str, params: dict[str, Any], seconds: float
    ) -> list[Row]:
        """orm_db.select, interrupted by the connection's progress handler."""
        with deadline(seconds) as budget:
            try:
                rows: list[Row] = orm_db.select(sql, params)
            except Exception as ex:
                if budget.fired:
                    raise BudgetExceededError(
                        f"the statement took more than {seconds:.3g} s"
                    ) from ex
                raise
        return rows

    def clock(self, orm_db: Any) -> float:
        """This machine's clock: the only one that opens the file."""
        return time.time()

    # Staticmethods: called per raw timestamp, so no bound-method lookup.
    timestamp = staticmethod(timestamp)

    @staticmethod
    def timestamp_param(moment: datetime) -> str:
        """The text the column holds for moment: SQLite compares it as text."""
        return timestamp_text(moment)
