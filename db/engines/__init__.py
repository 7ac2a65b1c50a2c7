"""Database engines: one package per engine, one interface above them (base)."""
