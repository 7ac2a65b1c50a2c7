"""Copy every row of one database into an empty one of another engine.

For the move from one machine to several: SQLite to PostgreSQL. The
target is migrated to the code's schema, must be at the source's schema
version and hold no rows. Tables are copied in foreign-key order in one
transaction of the target (a failure leaves it as it was), identity
sequences are moved past the copied ids, and the row counts and the
search index are verified before the commit. Token hashes are copied as
stored, so every API token keeps working. One transfer into a database
at a time: a second one is refused at once. Every refusal or failure is
a TransferError naming the file or table and the cause; the source's own
errors (a corrupt SQLite file) are left to the caller, who names the
file. What each engine does is its own (db.engines.transfer_source,
transfer_sink); the order and the checks are here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path

from db.engines import transfer_sink, transfer_source
from db.engines.base.schema import Table
from db.engines.base.transfer import RowRefusedError, RowSink, RowSource
from db.engines.base.transfer import TransferError as TransferError
from db.target import DatabaseTarget, SqliteTarget


@dataclass(frozen=True)
class Copied:
    """What was copied: rows per table, in the order they were copied."""

    tables: dict[str, int]


def copy_order(tables: dict[str, Table]) -> list[str]:
    """Table names with every referenced table before the tables referencing it."""
    graph = {
        name: {
            fk.table.lower()
            for fk in table.foreign_keys
            if fk.table.lower() != name and fk.table.lower() in tables
        }
        for name, table in tables.items()
    }
    return list(TopologicalSorter(graph).static_order())


def _verify(sink: RowSink, copied: dict[str, int], indexed: int | None) -> None:
    for table, count in copied.items():
        found = sink.count(table)
        if found != count:
            raise TransferError(f"{table}: copied {count} rows, the target has {found}")
    if indexed is not None:
        in_index = sink.search_indexed()
        if in_index != indexed:
            raise TransferError(
                f"search index: {indexed} messages indexed in the source, "
                f"{in_index} on the target"
            )


def transfer(
    source: DatabaseTarget | Path,
    target: DatabaseTarget,
    progress: Callable[[str, int], None] = lambda table, rows: None,
) -> Copied:
    """Copy the database at source into target; TransferError when refused.

    The source's own errors (corrupt, not a database) propagate.
    """
    if isinstance(source, Path):
        source = SqliteTarget(source)
    with transfer_source(source) as reading:
        # The version first: a source of another release may lack tables
        # (the search index) that reading them would trip over.
        versions = reading.versions()
        with transfer_sink(target) as writing:
            writing.claim()
            target_versions = writing.versions()
            if target_versions != versions:
                raise TransferError(
                    f"schema versions differ: the source {source.describe()} has "
                    f"{sorted(versions)}, the target {sorted(target_versions)}; "
                    "migrate both to the same release"
                )
            tables = reading.tables()
            indexed = reading.search_indexed() if "search_terms" in tables else None
            copied = _copy(reading, writing, tables, source, progress)
            _verify(writing, copied, indexed)
    return Copied(copied)


def _copy(
    reading: RowSource,
    writing: RowSink,
    tables: dict[str, Table],
    source: DatabaseTarget,
    progress: Callable[[str, int], None],
) -> dict[str, int]:
    order = copy_order(tables)
    for name in order:
        if writing.has_rows(name):
            raise TransferError(f"the target already holds rows in {name}: refused")
    copied: dict[str, int] = {}
    for name in order:
        table = tables[name].name
        wanted = set(writing.columns(table))
        columns = [c.name for c in tables[name].columns if c.name in wanted]
        count = 0
        try:
            for batch in reading.rows(table, columns):
                writing.insert(table, columns, batch)
                count += len(batch)
        except RowRefusedError as ex:
            hint = f"; {reading.foreign_key_hint()}" if ex.foreign_key else ""
            raise TransferError(
                f"table {table} of {source.describe()}: {ex}{hint}"
            ) from ex
        copied[table] = count
        writing.reset_sequences(table, columns)
        progress(table, count)
    return copied
