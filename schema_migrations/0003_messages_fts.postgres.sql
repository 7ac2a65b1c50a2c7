-- 0003_messages_fts (PostgreSQL half): full-text search over messages.body.
--
-- A generated tsvector column, kept in step by PostgreSQL itself inside the
-- writing transaction, with a GIN index: a search never sees a deleted
-- message. No entity declares body_tsv; the schema check leaves generated
-- columns out, as it leaves FTS5 tables out on SQLite.
--
-- 'simple': lower-cased words, no stemming and no stop words, as FTS5's
-- unicode61 tokenizer does on the SQLite half. The default parser would read
-- anything shaped like an HTML tag as a tag and index nothing inside it;
-- '<' and '>' become \x04 and \x05 (blanks to the parser; message bodies
-- may not contain them), so "a<b" indexes a and b, as FTS5 does.
ALTER TABLE "messages" ADD COLUMN "body_tsv" tsvector
  GENERATED ALWAYS AS (to_tsvector('simple', translate("body", '<>', E'\x04\x05'))) STORED;

CREATE INDEX "ix_messages_body_tsv" ON "messages" USING GIN ("body_tsv");
