"""Persistence: Pony ORM on SQLite (or PostgreSQL), versioned SQL migrations; no HTTP."""

from db.database import Database, open_database
from db.domain.records import (
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
from db.errors import (
    BusyError,
    ConflictError,
    DatabaseError,
    ForbiddenError,
    MigrationError,
    NotFoundError,
    SchemaMismatchError,
    StartupError,
    StorageError,
    StorageFullError,
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
    "StorageError",
    "StorageFullError",
    "UserRecord",
    "open_database",
]
