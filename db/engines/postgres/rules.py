"""What a migration file may hold on PostgreSQL, checked when it is read.

No transaction control (the runner owns the transaction) and no session
settings that would outlive the file; statements that cannot run inside
a transaction only alone, in a `transaction=off` file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from db.engines.base import sql
from db.engines.base.migration import Header
from db.errors import MigrationError

# Transaction control: the runner owns the transaction.
_PG_TRANSACTION = re.compile(
    r"^(BEGIN|START TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|"
    r"PREPARE TRANSACTION)\b"
)
# Session state that would outlive the file on the runner's connection.
_PG_SESSION = re.compile(r"^(SET (?!LOCAL\b|CONSTRAINTS\b)|RESET\b|DISCARD\b)")
# Statements PostgreSQL refuses inside a transaction block.
_PG_OUTSIDE = re.compile(
    r"^(CREATE (UNIQUE )?INDEX CONCURRENTLY|DROP INDEX CONCURRENTLY|"
    r"REINDEX .*\bCONCURRENTLY\b|REINDEX \(.*\bCONCURRENTLY\b|VACUUM\b|"
    r"ALTER SYSTEM\b|CREATE DATABASE\b|DROP DATABASE\b|CREATE TABLESPACE\b|"
    r"DROP TABLESPACE\b|CREATE SUBSCRIPTION\b|CLUSTER\s*$)"
)


def _words(statement: str) -> str:
    """The statement's significant tokens, upper-cased words, one space apart."""
    tokens = sql.significant(sql.tokenize(statement, "postgres"))
    return " ".join(t.text.upper() if t.kind == "word" else t.text for t in tokens)


def needs_no_transaction(statement: str) -> bool:
    """Whether PostgreSQL refuses to run statement inside a transaction block."""
    return _PG_OUTSIDE.match(_words(statement)) is not None


@dataclass(frozen=True)
class PostgresRules:
    """PostgreSQL: one transaction per file, or one statement alone (transaction=off)."""

    def check(self, name: str, text: str, header: Header) -> list[str]:
        """Split outside quotes and dollar quotes; refuse transaction control."""
        statements = sql.split(text, "postgres")
        for number, statement in enumerate(statements, 1):
            words = _words(statement)
            where = f"{name}: statement {number}"
            if match := _PG_TRANSACTION.match(words):
                raise MigrationError(
                    f"{where} uses {match.group(1)}, which a migration must not "
                    "contain; the runner owns the transaction"
                )
            if _PG_SESSION.match(words):
                raise MigrationError(
                    f"{where} changes session settings, which would outlive the "
                    "file; use SET LOCAL, or the header's lock_timeout= and "
                    "statement_timeout="
                )
            if header.transaction and needs_no_transaction(statement):
                raise MigrationError(
                    f"{where} ({' '.join(words.split()[:4])} ...) cannot run inside "
                    "a transaction: put it alone in a file whose header says "
                    "'-- migrate: transaction=off'"
                )
        if not header.transaction and statements:
            words = _words(statements[0])
            if re.match(
                r"^CREATE (UNIQUE )?INDEX CONCURRENTLY ", words
            ) and not re.match(
                r"^CREATE (UNIQUE )?INDEX CONCURRENTLY IF NOT EXISTS ", words
            ):
                raise MigrationError(
                    f"{name}: write CREATE INDEX CONCURRENTLY IF NOT EXISTS with a "
                    "name, so that a run killed half way can be run again"
                )
        if not header.transaction and len(statements) > 1:
            raise MigrationError(
                f"{name}: a transaction=off file holds exactly one statement "
                f"(found {len(statements)}), so that it is never half applied"
            )
        return statements
