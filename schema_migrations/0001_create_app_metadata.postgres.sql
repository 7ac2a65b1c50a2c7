-- App metadata: operator-owned key/value pairs (the PostgreSQL half of
-- 0001; Pony's DDL for the postgres provider, where a PRIMARY KEY column
-- is NOT NULL by definition).
CREATE TABLE "app_metadata" (
  "key" TEXT PRIMARY KEY,
  "value" TEXT NOT NULL,
  "updated_at" TIMESTAMP NOT NULL
);
