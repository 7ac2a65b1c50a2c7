"""PostgreSQL: everything the service does that only PostgreSQL does."""
