"""SQLite: everything the service does that only SQLite does."""
