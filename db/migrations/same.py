"""Whether two databases have the same schema, and where they differ.

`baseline` adopts a database only when its schema is what the files
create; this comparison is deliberately strict (every column's type,
NOT NULL, DEFAULT and key position, every index, foreign key, view,
trigger and virtual table), where the start-up check tolerates harmless
extras. Views, triggers and virtual tables compare by their SQL with
whitespace, quoting and letter case normalised.
"""

from __future__ import annotations

from db.engines.base import sql
from db.engines.base.plan import norm
from db.engines.base.schema import FullSchema, Index, Table
from db.engines.base.sql import Dialect


def _sql_key(text: str, dialect: Dialect) -> str:
    tokens = sql.significant(sql.tokenize(text, dialect))
    return " ".join(t.name if t.is_name else t.text for t in tokens)


def _index_key(index: Index) -> tuple[object, ...]:
    columns = tuple(c.lower() for c in index.columns)
    if index.origin == "c":  # named by hand: the name matters (DROP INDEX)
        return ("index", index.name.lower(), columns, index.unique)
    return (index.origin, columns)


def _describe_index(key: tuple[object, ...]) -> str:
    if key[0] == "index":
        unique = "unique " if key[3] else ""
        return f"{unique}index {key[1]} ({', '.join(key[2])})"  # type: ignore[arg-type]
    kind = "primary key" if key[0] == "pk" else "unique constraint"
    return f"{kind} ({', '.join(key[1])})"  # type: ignore[arg-type]


def _table(want: Table, got: Table, theirs: str) -> list[str]:
    lines: list[str] = []
    name = want.name
    for column in want.columns:
        other = got.column(column.name)
        where = f"{name}.{column.name}"
        if other is None:
            lines.append(
                f"{where}: column created by {theirs}, missing in the database"
            )
            continue
        if column.type != other.type:
            lines.append(
                f"{where}: type {column.type or '(none)'} from {theirs}, "
                f"{other.type or '(none)'} in the database"
            )
        if column.notnull != other.notnull:
            lines.append(
                f"{where}: {'NOT NULL' if column.notnull else 'nullable'} from {theirs}, "
                f"{'NOT NULL' if other.notnull else 'nullable'} in the database"
            )
        if norm(column.default) != norm(other.default):
            lines.append(
                f"{where}: DEFAULT {column.default or '(none)'} from {theirs}, "
                f"{other.default or '(none)'} in the database"
            )
        if column.pk != other.pk:
            lines.append(
                f"{where}: primary key position {column.pk} from {theirs}, "
                f"{other.pk} in the database"
            )
    for column in got.columns:
        if want.column(column.name) is None:
            lines.append(
                f"{name}.{column.name}: column in the database, not from {theirs}"
            )
    want_ix = {_index_key(i) for i in want.indexes}
    got_ix = {_index_key(i) for i in got.indexes}
    for key in sorted(want_ix - got_ix, key=repr):
        lines.append(
            f"{name}: {_describe_index(key)} from {theirs}, missing in the database"
        )
    for key in sorted(got_ix - want_ix, key=repr):
        lines.append(
            f"{name}: {_describe_index(key)} in the database, not from {theirs}"
        )
    want_fk = {
        (f.column.lower(), f.table.lower(), (f.to or "").lower(), f.on_delete)
        for f in want.foreign_keys
    }
    got_fk = {
        (f.column.lower(), f.table.lower(), (f.to or "").lower(), f.on_delete)
        for f in got.foreign_keys
    }
    for fk in sorted(want_fk - got_fk):
        lines.append(
            f"{name}.{fk[0]}: foreign key to {fk[1]}({fk[2]}) ON DELETE {fk[3]} from "
            f"{theirs}, missing in the database"
        )
    for fk in sorted(got_fk - want_fk):
        lines.append(
            f"{name}.{fk[0]}: foreign key to {fk[1]}({fk[2]}) ON DELETE {fk[3]} in the "
            f"database, not from {theirs}"
        )
    if want.autoincrement != got.autoincrement:
        has = "AUTOINCREMENT" if want.autoincrement else "no AUTOINCREMENT"
        other_has = "AUTOINCREMENT" if got.autoincrement else "no AUTOINCREMENT"
        lines.append(f"{name}: {has} from {theirs}, {other_has} in the database")
    return lines


def differences(
    want: FullSchema, got: FullSchema, dialect: Dialect, theirs: str = "the files"
) -> list[str]:
    """Every difference between want (what the files create) and got, one line each."""
    lines: list[str] = []
    for key in sorted(set(want.tables) | set(got.tables)):
        if key not in got.tables:
            lines.append(
                f"table {want.tables[key].name}: created by {theirs}, missing in the database"
            )
        elif key not in want.tables:
            lines.append(
                f"table {got.tables[key].name}: in the database, not from {theirs}"
            )
        else:
            lines.extend(_table(want.tables[key], got.tables[key], theirs))
    for key in sorted(set(want.others) | set(got.others)):
        mine, other = want.others.get(key), got.others.get(key)
        if other is None and mine is not None:
            lines.append(
                f"{mine.type} {mine.name}: created by {theirs}, missing in the database"
            )
        elif mine is None and other is not None:
            lines.append(
                f"{other.type} {other.name}: in the database, not from {theirs}"
            )
        elif (
            mine is not None
            and other is not None
            and _sql_key(mine.sql, dialect) != _sql_key(other.sql, dialect)
        ):
            lines.append(
                f"{mine.type} {mine.name}: its SQL differs from what {theirs} create"
            )
    return lines
