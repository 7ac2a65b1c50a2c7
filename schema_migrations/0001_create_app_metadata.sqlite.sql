-- App metadata: operator-owned key/value pairs.
-- The key is NOT NULL explicitly: SQLite lets a non-integer PRIMARY KEY
-- hold NULL otherwise.
CREATE TABLE "app_metadata" (
  "key" TEXT NOT NULL PRIMARY KEY,
  "value" TEXT NOT NULL,
  "updated_at" DATETIME NOT NULL
);
