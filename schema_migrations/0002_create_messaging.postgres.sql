-- 0002_create_messaging: the PostgreSQL half, Pony's DDL for the postgres
-- provider for the same entities as 0002_create_messaging.sqlite.sql
-- (TIMESTAMP, BYTEA; foreign keys as named constraints), with one correction
-- (db/schema/pony_ddl.py): Pony 0.7.20 writes SERIAL for every auto key, even
-- size=64 ones whose foreign keys it makes BIGINT; these ids are BIGSERIAL,
-- 64-bit as on SQLite.

CREATE TABLE "users" (
  "id" BIGSERIAL PRIMARY KEY,
  "handle" VARCHAR(32) UNIQUE NOT NULL,
  "display_name" VARCHAR(100) NOT NULL,
  "created_at" TIMESTAMP NOT NULL
);

CREATE TABLE "api_tokens" (
  "id" BIGSERIAL PRIMARY KEY,
  "user_id" BIGINT NOT NULL,
  "token_hash" BYTEA UNIQUE NOT NULL,
  "created_at" TIMESTAMP NOT NULL,
  "last_used_at" TIMESTAMP,
  "revoked_at" TIMESTAMP
);

CREATE INDEX "ix_api_tokens_user" ON "api_tokens" ("user_id");

ALTER TABLE "api_tokens" ADD CONSTRAINT "fk_api_tokens__user_id" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE;

CREATE TABLE "conversations" (
  "id" BIGSERIAL PRIMARY KEY,
  "title" VARCHAR(200) NOT NULL,
  "created_by" BIGINT NOT NULL,
  "created_at" TIMESTAMP NOT NULL,
  "last_message_at" TIMESTAMP NOT NULL
);

CREATE INDEX "ix_conversations_created_by" ON "conversations" ("created_by");

ALTER TABLE "conversations" ADD CONSTRAINT "fk_conversations__created_by" FOREIGN KEY ("created_by") REFERENCES "users" ("id");

CREATE TABLE "memberships" (
  "conversation_id" BIGINT NOT NULL,
  "user_id" BIGINT NOT NULL,
  "joined_at" TIMESTAMP NOT NULL,
  PRIMARY KEY ("conversation_id", "user_id")
);

CREATE INDEX "idx_memberships__user_id_conversation_id" ON "memberships" ("user_id", "conversation_id");

ALTER TABLE "memberships" ADD CONSTRAINT "fk_memberships__conversation_id" FOREIGN KEY ("conversation_id") REFERENCES "conversations" ("id") ON DELETE CASCADE;

ALTER TABLE "memberships" ADD CONSTRAINT "fk_memberships__user_id" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE;

CREATE TABLE "messages" (
  "id" BIGSERIAL PRIMARY KEY,
  "conversation_id" BIGINT NOT NULL,
  "author_id" BIGINT NOT NULL,
  "body" TEXT NOT NULL,
  "created_at" TIMESTAMP NOT NULL
);

CREATE INDEX "idx_messages__conversation_id_id" ON "messages" ("conversation_id", "id");

CREATE INDEX "ix_messages_author" ON "messages" ("author_id");

ALTER TABLE "messages" ADD CONSTRAINT "fk_messages__author_id" FOREIGN KEY ("author_id") REFERENCES "users" ("id");

ALTER TABLE "messages" ADD CONSTRAINT "fk_messages__conversation_id" FOREIGN KEY ("conversation_id") REFERENCES "conversations" ("id") ON DELETE CASCADE;
