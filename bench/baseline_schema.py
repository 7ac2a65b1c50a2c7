"""The baseline's tables and PRAGMAs: what the service's migrations create.

bench checks that both databases agree on the tables the workloads touch
(data.table_shape) and that PRAGMAS still equals db/engines/sqlite/connection.py's
list (data.pragma_drift), and prints any drift as a note.
"""

from __future__ import annotations

# Mirrors schema_migrations/0001_create_app_metadata.sql of the service (its
# table, not its bookkeeping); bench checks that the two shapes still agree.
SCHEMA = """
CREATE TABLE IF NOT EXISTS "app_metadata" (
  "key" TEXT NOT NULL PRIMARY KEY,
  "value" TEXT NOT NULL,
  "updated_at" DATETIME NOT NULL
);
"""

# The messaging tables as schema_migrations/0002 to 0004 create them
# (indexes, foreign keys, the FTS5 index and its triggers: a posted message
# costs the same SQLite work in both stacks).
MESSAGING_SCHEMA = """
CREATE TABLE IF NOT EXISTS "users" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "handle" VARCHAR(32) UNIQUE NOT NULL,
  "display_name" VARCHAR(100) NOT NULL,
  "created_at" DATETIME NOT NULL
);
CREATE TABLE IF NOT EXISTS "api_tokens" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "user_id" INTEGER NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
  "token_hash" BLOB UNIQUE NOT NULL,
  "created_at" DATETIME NOT NULL,
  "last_used_at" DATETIME,
  "revoked_at" DATETIME
);
CREATE INDEX IF NOT EXISTS "ix_api_tokens_user" ON "api_tokens" ("user_id");
CREATE TABLE IF NOT EXISTS "conversations" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "title" VARCHAR(200) NOT NULL,
  "created_by" INTEGER NOT NULL REFERENCES "users" ("id"),
  "created_at" DATETIME NOT NULL,
  "last_message_at" DATETIME NOT NULL,
  "owner_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS "ix_conversations_created_by" ON "conversations" ("created_by");
CREATE INDEX IF NOT EXISTS "ix_conversations_owner" ON "conversations" ("owner_id");
CREATE TABLE IF NOT EXISTS "memberships" (
  "conversation_id" INTEGER NOT NULL REFERENCES "conversations" ("id") ON DELETE CASCADE,
  "user_id" INTEGER NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
  "joined_at" DATETIME NOT NULL,
  PRIMARY KEY ("conversation_id", "user_id")
);
CREATE INDEX IF NOT EXISTS "idx_memberships__user_id_conversation_id"
  ON "memberships" ("user_id", "conversation_id");
CREATE TABLE IF NOT EXISTS "messages" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "conversation_id" INTEGER NOT NULL REFERENCES "conversations" ("id") ON DELETE CASCADE,
  "author_id" INTEGER NOT NULL REFERENCES "users" ("id"),
  "body" TEXT NOT NULL,
  "created_at" DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_messages__conversation_id_id"
  ON "messages" ("conversation_id", "id");
CREATE INDEX IF NOT EXISTS "ix_messages_author" ON "messages" ("author_id");
CREATE VIRTUAL TABLE IF NOT EXISTS "messages_fts" USING fts5(
  body, content = 'messages', content_rowid = 'id'
);
CREATE TRIGGER IF NOT EXISTS "messages_fts_insert" AFTER INSERT ON "messages" BEGIN
  INSERT INTO "messages_fts" (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER IF NOT EXISTS "messages_fts_delete" AFTER DELETE ON "messages" BEGIN
  INSERT INTO "messages_fts" ("messages_fts", rowid, body)
    VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER IF NOT EXISTS "messages_fts_update" AFTER UPDATE OF body ON "messages" BEGIN
  INSERT INTO "messages_fts" ("messages_fts", rowid, body)
    VALUES ('delete', old.id, old.body);
  INSERT INTO "messages_fts" (rowid, body) VALUES (new.id, new.body);
END;
"""

# The service's connection pragmas (db/engines/sqlite/connection.py), in its order; bench notes
# any drift. The first four are the ones the issue names.
PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_size_limit = 67108864",
    "PRAGMA mmap_size = 134217728",
    "PRAGMA cache_size = 2000",
    "PRAGMA temp_store = MEMORY",
)
