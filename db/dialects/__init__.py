"""Database engines: what differs between SQLite and PostgreSQL lives here."""
