"""Persistence: Pony ORM on SQLite, versioned SQL migrations; no HTTP here."""

from db.database import Database, open_database
from db.errors import (
    BusyError,
    ConflictError,
    DatabaseError,
    MigrationError,
    NotFoundError,
    SchemaMismatchError,
    StartupError,
)
from db.records import MetadataPage, MetadataRecord, SchemaState

__all__ = [
    "BusyError",
    "ConflictError",
    "Database",
    "DatabaseError",
    "MetadataPage",
    "MetadataRecord",
    "MigrationError",
    "NotFoundError",
    "SchemaMismatchError",
    "SchemaState",
    "StartupError",
    "open_database",
]
