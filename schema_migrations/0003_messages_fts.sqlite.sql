-- 0003_messages_fts: full-text search over messages.body (written by hand:
-- Pony has no FTS5, so no entity declares these objects; db/sqlite.py leaves
-- virtual tables and their shadow tables out of the schema the check and the
-- generator compare).
--
-- External content: the index stores only the terms, the text stays in
-- "messages" (rowid = messages.id). The triggers keep it in step inside the
-- writing transaction, so a search never sees a deleted message.
CREATE VIRTUAL TABLE "messages_fts" USING fts5(
  body,
  content = 'messages',
  content_rowid = 'id'
);

CREATE TRIGGER "messages_fts_insert" AFTER INSERT ON "messages" BEGIN
  INSERT INTO "messages_fts" (rowid, body) VALUES (new.id, new.body);
END;

CREATE TRIGGER "messages_fts_delete" AFTER DELETE ON "messages" BEGIN
  INSERT INTO "messages_fts" ("messages_fts", rowid, body)
    VALUES ('delete', old.id, old.body);
END;

CREATE TRIGGER "messages_fts_update" AFTER UPDATE OF body ON "messages" BEGIN
  INSERT INTO "messages_fts" ("messages_fts", rowid, body)
    VALUES ('delete', old.id, old.body);
  INSERT INTO "messages_fts" (rowid, body) VALUES (new.id, new.body);
END;
