"""Persistence: Pony ORM on SQLite (or PostgreSQL), versioned SQL migrations; no HTTP.

Importing db loads nothing: each layer is imported where it is used
(docs/development.md, "Where things live in db/").
"""
