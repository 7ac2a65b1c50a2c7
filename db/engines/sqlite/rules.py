"""What a migration file may hold on SQLite, checked when it is read.

One BEGIN IMMEDIATE transaction per file, always: a file may not
control the transaction, nor hold the PRAGMAs and VACUUM that cannot
run inside one; `transaction=off` is PostgreSQL's.
"""

from __future__ import annotations

import re

from db.engines.base import sql
from db.engines.base.migration import Header
from db.errors import MigrationError

# Statements a migration file must not contain: each would break the
# runner's transaction or cannot run inside one.
_FORBIDDEN = re.compile(
    r"^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE|VACUUM|"
    r"PRAGMA\s+(\w+\.)?(foreign_keys|journal_mode|legacy_alter_table)\b)",
    re.IGNORECASE,
)


def forbidden_statement(statement: str) -> str | None:
    """Name the transaction-breaking keyword a statement starts with."""
    match = _FORBIDDEN.match(sql.strip_comments(statement, "sqlite"))
    return " ".join(match.group(0).split()).upper() if match else None


class SqliteRules:
    """SQLite: one BEGIN IMMEDIATE transaction per file, always."""

    def check(self, name: str, text: str, header: Header) -> list[str]:
        """Split into statements and refuse what breaks the transaction."""
        if not header.transaction:
            raise MigrationError(
                f"{name}: transaction=off is for PostgreSQL statements such as "
                "CREATE INDEX CONCURRENTLY; SQLite runs every file in one "
                "transaction (put the statement in the file's .postgres.sql half)"
            )
        statements = sql.split(text, "sqlite")
        for number, statement in enumerate(statements, 1):
            keyword = forbidden_statement(statement)
            if keyword:
                hint = (
                    "; declare '-- migrate: foreign_keys=off' in the header instead"
                    if "FOREIGN_KEYS" in keyword
                    else "; the runner owns the transaction"
                )
                raise MigrationError(
                    f"{name}: statement {number} uses {keyword}, which a migration "
                    f"must not contain{hint}"
                )
        return statements
