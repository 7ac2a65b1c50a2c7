"""Compare a migrated schema with the one the Pony entities expect.

The same comparison on both engines, on tables introspected the same
way: columns, types, NOT NULL, primary keys, unique constraints and
foreign keys with their ON DELETE. Harmless extras (a nullable column,
an index, a table the entities do not use) are accepted: an older
release must start on a newer schema.
"""

from __future__ import annotations

from db.engines.base.schema import Schema, Table


def _unique_sets(table: Table) -> set[tuple[str, ...]]:
    return {
        tuple(c.lower() for c in index.columns)
        for index in table.indexes
        if index.unique and index.origin != "pk"
    }


def _foreign_keys(table: Table) -> set[tuple[str, str, str, str]]:
    return {
        (fk.column.lower(), fk.table.lower(), (fk.to or "").lower(), fk.on_delete)
        for fk in table.foreign_keys
    }


def compare_table(expected: Table, actual: Table) -> list[str]:
    """Differences that would make the entities misbehave, one line each."""
    problems: list[str] = []
    name = expected.name
    for want in expected.columns:
        got = actual.column(want.name)
        where = f"{name}.{want.name}"
        if got is None:
            problems.append(f"{where}: column missing")
            continue
        if got.type != want.type:
            problems.append(
                f"{where}: type {got.type or '(none)'}, entities expect {want.type}"
            )
        # SQLite lets a non-integer primary key be NULL; NOT NULL there is stricter, fine.
        if got.notnull != want.notnull and not (got.notnull and want.pk):
            wanted = "NOT NULL" if want.notnull else "nullable"
            found = "NOT NULL" if got.notnull else "nullable"
            problems.append(f"{where}: {found}, entities expect {wanted}")
        if got.pk != want.pk:
            problems.append(
                f"{where}: primary key position {got.pk}, entities expect {want.pk}"
            )
    for extra in actual.columns:
        if (
            expected.column(extra.name) is None
            and extra.notnull
            and extra.default is None
        ):
            problems.append(
                f"{name}.{extra.name}: NOT NULL column without a default that the "
                "entities do not know (every insert would fail)"
            )
    for columns in sorted(_unique_sets(expected) - _unique_sets(actual)):
        problems.append(f"{name}({', '.join(columns)}): unique constraint missing")
    for columns in sorted(_unique_sets(actual) - _unique_sets(expected)):
        problems.append(
            f"{name}({', '.join(columns)}): unique constraint the entities do not declare"
        )
    for fk in sorted(_foreign_keys(expected) - _foreign_keys(actual)):
        problems.append(
            f"{name}.{fk[0]}: foreign key to {fk[1]}({fk[2]}) ON DELETE {fk[3]} missing"
        )
    for fk in sorted(_foreign_keys(actual) - _foreign_keys(expected)):
        problems.append(
            f"{name}.{fk[0]}: foreign key to {fk[1]}({fk[2]}) ON DELETE {fk[3]} "
            "that the entities do not declare"
        )
    return problems


def compare(expected: Schema, actual: Schema) -> list[str]:
    """Every difference between the entities' schema and the database's."""
    problems: list[str] = []
    for key, table in sorted(expected.items()):
        if key not in actual:
            problems.append(f"{table.name}: table missing")
            continue
        problems.extend(compare_table(table, actual[key]))
    return problems
