"""Exceptions the persistence layer raises; what callers may catch."""


class DatabaseError(Exception):
    """Base class of every error db/ raises on purpose."""


class NotFoundError(DatabaseError):
    """The requested row does not exist."""


class ConflictError(DatabaseError):
    """The change conflicts with data already stored (a constraint failed)."""


class BusyError(DatabaseError):
    """The database stayed locked by another writer past the timeout."""


class StartupError(DatabaseError):
    """The database cannot be opened for serving; the message says why."""


class MigrationError(StartupError):
    """A migration file is missing, edited, malformed or failed to apply."""


class SchemaMismatchError(StartupError):
    """The migrated schema differs from what the entities expect."""


class ForbiddenError(DatabaseError):
    """The caller may see the row but not change it (another author's message,
    a conversation someone else owns)."""


class StorageError(DatabaseError):
    """The machine, not the request, failed: I/O error, unreachable server."""


class StorageFullError(StorageError):
    """A write failed for lack of space (disk or quota full)."""


class BudgetExceededError(DatabaseError):
    """A bounded operation (a search) ran past its time budget and was stopped."""
