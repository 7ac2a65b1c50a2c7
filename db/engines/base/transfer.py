"""What `transfer` asks of the engine it reads from and the one it writes to.

db/transfer.py copies every table in foreign-key order from a RowSource
into a RowSink, inside the sink's one transaction, and verifies the row
counts and the search index before it commits. SQLite is a source
(db/engines/sqlite/transfer.py), PostgreSQL a sink
(db/engines/postgres/transfer.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from db.engines.base.schema import Table
from db.errors import DatabaseError

Batch = list[tuple[Any, ...]]


class TransferError(DatabaseError):
    """The transfer was refused or failed; nothing was written to the target."""


class RowRefusedError(TransferError):
    """The sink refused a row; the message says why, the caller names the table."""

    def __init__(self, why: str, *, foreign_key: bool = False) -> None:
        super().__init__(why)
        self.foreign_key = foreign_key


class RowSource(Protocol):
    """A database read for `transfer`, read-only."""

    def tables(self) -> dict[str, Table]:
        """Its tables by lower-cased name, the tracking tables left out."""
        ...

    def versions(self) -> set[int]:
        """The migration versions applied to it; TransferError when untracked."""
        ...

    def search_indexed(self) -> int:
        """How many messages its search index holds."""
        ...

    def foreign_key_hint(self) -> str:
        """How to find the rows that break a foreign key, in the source."""
        ...

    def rows(self, table: str, columns: list[str]) -> Iterator[Batch]:
        """Every row of table (those columns, in that order), in batches."""
        ...


class RowSink(Protocol):
    """A database written by `transfer`, in one transaction.

    Its own driver's errors are TransferErrors naming the target; a row it
    refuses is a RowRefusedError.
    """

    def claim(self) -> None:
        """Refuse at once (TransferError) while another transfer writes to it."""
        ...

    def versions(self) -> set[int]:
        """The migration versions applied to it."""
        ...

    def has_rows(self, table: str) -> bool:
        """Whether table holds any row."""
        ...

    def columns(self, table: str) -> list[str]:
        """The columns of table that take values (not generated ones)."""
        ...

    def insert(self, table: str, columns: list[str], batch: Batch) -> None:
        """Insert a batch of rows."""
        ...

    def reset_sequences(self, table: str, columns: list[str]) -> None:
        """Move the identity sequences of these columns past the copied values."""
        ...

    def count(self, table: str) -> int:
        """How many rows table holds now."""
        ...

    def search_indexed(self) -> int:
        """How many messages its search index holds now."""
        ...
