"""Database engines: what differs between SQLite and PostgreSQL lives here.

Domain modules (metadata, users, conversations, messages, search) speak
Pony and never name an engine; they ask their Dialect for the few things
that differ ("serialise writers of this key", "search these words").
db.database picks the Dialect for the target it opens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from db.migrate import Migration
    from db.session import WriteGate

Row = tuple[Any, ...]
MigrateMode = Literal["apply", "verify", "off"]


class Dialect(Protocol):
    """The engine-specific operations the domain code needs."""

    @property
    def name(self) -> Literal["sqlite", "postgres"]:
        """Which engine."""

    def lock_key(self, orm_db: Any, *key: object) -> None:
        """Make concurrent writers of this logical key take turns.

        For read-modify-write on rows that may not exist yet (an upsert):
        row locks cannot cover a row nobody has inserted. Call inside the
        write transaction; held until it ends.
        """

    def search(
        self, orm_db: Any, user_id: int, terms: list[str], limit: int
    ) -> list[Row]:
        """Messages of the user's conversations containing every term, best first.

        Rows are (message id, conversation id, author handle, created_at as
        stored, snippet), the snippet's matches between SNIPPET_OPEN and
        SNIPPET_CLOSE and its text otherwise raw (the caller escapes it).
        """


# Around matched terms in a snippet: control characters, which message
# bodies may not contain, so the HTTP layer can escape the text and only
# then turn these into markup.
SNIPPET_OPEN = "\x02"
SNIPPET_CLOSE = "\x03"
SNIPPET_WORDS = 12


class Engine(Protocol):
    """One database the service runs on, through its lifecycle.

    db.database calls these in order: migrate, bind, check_schema, started;
    gate and fault while serving; closed after every connection closed.
    """

    @property
    def dialect(self) -> Dialect:
        """The domain operations this engine answers."""

    def describe(self) -> str:
        """What to call the database in logs and errors (no secrets)."""

    def migrate(self, migrations: list[Migration], mode: MigrateMode) -> None:
        """Apply pending migrations, refuse to start with any, or only check."""

    def bind(self, orm_db: Any) -> None:
        """Bind a Pony Database whose entities are defined (hooks first)."""

    def check_schema(self, orm_db: Any) -> None:
        """Map the entities; SchemaMismatchError when the schema differs."""

    def started(self, orm_db: Any) -> None:
        """Checks and maintenance once the database is open and mapped."""

    def gate(self, timeout: float) -> WriteGate:
        """The write gate requests pass (bounded by timeout)."""

    def fault(self) -> str | None:
        """Why the database cannot serve right now, or None."""

    def closed(self) -> None:
        """Maintenance after every connection was closed."""
