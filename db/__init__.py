"""Persistence: Pony ORM on SQLite, versioned SQL migrations; no HTTP here."""

from db.database import Database, open_database
from db.errors import (
    BusyError,
    ConflictError,
    DatabaseError,
    ForbiddenError,
    MigrationError,
    NotFoundError,
    SchemaMismatchError,
    StartupError,
)
from db.records import (
    Caller,
    ConversationPage,
    ConversationRecord,
    MemberRecord,
    MessagePage,
    MessageRecord,
    MetadataPage,
    MetadataRecord,
    SchemaState,
    SearchHit,
    UserRecord,
)

__all__ = [
    "BusyError",
    "Caller",
    "ConflictError",
    "ConversationPage",
    "ConversationRecord",
    "Database",
    "DatabaseError",
    "ForbiddenError",
    "MemberRecord",
    "MessagePage",
    "MessageRecord",
    "MetadataPage",
    "MetadataRecord",
    "MigrationError",
    "NotFoundError",
    "SchemaMismatchError",
    "SchemaState",
    "SearchHit",
    "StartupError",
    "UserRecord",
    "open_database",
]
