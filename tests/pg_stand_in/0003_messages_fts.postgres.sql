-- Tests only: a stand-in for the PostgreSQL half of 0003_messages_fts until
-- the real one ships in schema_migrations/ (tests/helpers.py copies it only
-- while schema_migrations/ has no 0003 .postgres.sql). A generated tsvector
-- column no entity declares, with a GIN index.
ALTER TABLE "messages" ADD COLUMN "body_tsv" tsvector
  GENERATED ALWAYS AS (to_tsvector('simple', "body")) STORED;

CREATE INDEX "ix_messages_body_tsv" ON "messages" USING GIN ("body_tsv");
