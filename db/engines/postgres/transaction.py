"""Per-transaction settings: SET LOCAL, the kind every pooler keeps.

A setting made with SET LOCAL lives exactly as long as the transaction,
and a transaction-pooling pgbouncer runs a whole transaction on one
server session, so it holds through the pooler as on a direct
connection, and never leaks into the next client's transaction (a
session-level SET would, and a startup option is refused). Each write
transaction of the service begins with its lock and statement timeouts
(PostgresEngine.begin_write).
"""

from __future__ import annotations

from typing import Any


def milliseconds(seconds: float) -> int:
    """seconds as whole milliseconds, at least 1 (0 would mean no limit)."""
    return max(1, round(seconds * 1000))


def set_local_sql(**settings: int) -> str:
    """One round trip of SET LOCAL statements (integer values: milliseconds)."""
    return "; ".join(
        f"SET LOCAL {name} = {int(value)}" for name, value in settings.items()
    )


def set_local(orm_db: Any, statement: str) -> None:
    """Run set_local_sql()'s statement in the current db_session's transaction.

    Pony's db.execute() begins the transaction first when the session has
    none (on PostgreSQL that only leaves autocommit: no lock is taken).
    """
    orm_db.execute(statement, {})  # globals given: no frame lookup per call
