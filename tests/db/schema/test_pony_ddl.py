"""Pins the Pony internals db/schema/pony_ddl.py reads (pony 0.7.20)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pony import orm

from db.engines import engine_for
from db.schema.expected import entity_ddl_on
from db.schema.pony_ddl import ColumnDefault
from db.target import SqliteTarget


def _define(db: orm.Database) -> dict[str, Any]:
    class Thing(db.Entity):
        _table_ = "things"
        id = orm.PrimaryKey(int, auto=True, column="id")
        label = orm.Required(str, column="label", default="none")
        note = orm.Optional(str, column="note")
        size = orm.Required(int, column="size", sql_default="7")
        seen = orm.Required(datetime, column="seen", default=datetime.now)
        loose = orm.Optional(str, column="loose", nullable=True)

    return {"Thing": Thing}


def test_entity_ddl_reads_columns_and_defaults(tmp_path: Path) -> None:
    """Column DDL and defaults (constant, implicit '', sql_default, callable) come through."""
    ddl = entity_ddl_on(
        _define, engine_for(SqliteTarget(tmp_path / "entities.sqlite3"))
    )
    assert 'CREATE TABLE "things"' in ddl.script
    assert ddl.column_sql[("things", "label")] == '"label" TEXT NOT NULL'
    assert ddl.column_sql[("things", "size")] == '"size" INTEGER DEFAULT 7 NOT NULL'
    assert ddl.defaults[("things", "label")] == ColumnDefault(value="none")
    assert ddl.defaults[("things", "note")] == ColumnDefault(value="")
    assert ddl.defaults[("things", "size")] == ColumnDefault(sql="7")
    assert ddl.defaults[("things", "seen")] == ColumnDefault(computed=True)
    assert ("things", "loose") not in ddl.defaults
    assert ("things", "id") not in ddl.defaults
