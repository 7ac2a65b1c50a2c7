"""PostgreSQL schema introspection for the migrations and the schema check.

Reads one schema (namespace) from pg_catalog into the same model SQLite's
introspection fills (db/engines/base/schema.py): columns with format_type()
types, NOT NULL, defaults and primary-key positions; indexes with their
origin (primary key, unique constraint, CREATE INDEX); foreign keys with
their ON DELETE rule. Generated columns (like messages.body_tsv, which
no entity declares) and the indexes over them are left out of the
tables, as FTS5 tables are on SQLite, and reported as other objects.
"""

from __future__ import annotations

from typing import Any

from db.engines.base.schema import (
    Column,
    ForeignKey,
    FullSchema,
    Index,
    SchemaObject,
    Table,
)

_ON_DELETE = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}

CURRENT = "current_schema()"  # the schema unqualified names resolve to
TEMPORARY = "pg_my_temp_schema()"  # this session's pg_temp


def _namespace(cur: Any, which: str) -> int | None:
    if which == TEMPORARY:
        cur.execute("SELECT pg_my_temp_schema()::oid")
    else:
        cur.execute("SELECT oid FROM pg_namespace WHERE nspname = current_schema()")
    row = cur.fetchone()
    return None if row is None or not row[0] else int(row[0])


def _tables(cur: Any, namespace: int) -> list[tuple[int, str]]:
    cur.execute(
        "SELECT oid, relname FROM pg_class WHERE relnamespace = %s "
        "AND relkind IN ('r', 'p') ORDER BY relname",
        (namespace,),
    )
    return [(int(oid), str(name)) for oid, name in cur.fetchall()]


def _columns(cur: Any, oid: int) -> tuple[list[Column], dict[int, str], dict[str, str]]:
    """Ordinary columns, every column's name by attnum, generated columns' SQL."""
    cur.execute(
        "SELECT conkey FROM pg_constraint WHERE conrelid = %s AND contype = 'p'", (oid,)
    )
    row = cur.fetchone()
    pk = list(row[0]) if row else []
    cur.execute(
        "SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), "
        "a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attgenerated "
        "FROM pg_attribute a LEFT JOIN pg_attrdef d "
        "ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (oid,),
    )
    columns: list[Column] = []
    names: dict[int, str] = {}
    generated: dict[str, str] = {}
    for attnum, name, type_, notnull, default, kind in cur.fetchall():
        names[int(attnum)] = str(name)
        if kind:  # 's': GENERATED ALWAYS AS (...) STORED
            generated[str(name)] = (
                f"{name} {type_} GENERATED ALWAYS AS ({default}) STORED"
            )
            continue
        position = pk.index(attnum) + 1 if attnum in pk else 0
        columns.append(
            Column(str(name), str(type_).upper(), bool(notnull), default, position)
        )
    return columns, names, generated


def _indexes(cur: Any, oid: int, names: dict[int, str]) -> list[tuple[Index, str]]:
    cur.execute(
        "SELECT i.relname, x.indisunique, x.indkey::int2[], pg_get_indexdef(x.indexrelid), "
        "(SELECT contype FROM pg_constraint c WHERE c.conindid = x.indexrelid "
        " AND c.conrelid = x.indrelid AND c.contype IN ('p', 'u') LIMIT 1) "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s ORDER BY i.relname",
        (oid,),
    )
    found = []
    for name, unique, keys, sql, contype in cur.fetchall():
        columns = tuple(names.get(int(k), "(expression)") for k in keys)
        origin = {"p": "pk", "u": "u"}.get(contype or "", "c")
        found.append((Index(str(name), columns, bool(unique), origin), str(sql)))
    return found


def _foreign_keys(cur: Any, oid: int, names: dict[int, str]) -> list[ForeignKey]:
    cur.execute(
        "SELECT c.conname, c.conkey, c.confkey, p.relname, c.confdeltype, c.confrelid "
        "FROM pg_constraint c JOIN pg_class p ON p.oid = c.confrelid "
        "WHERE c.conrelid = %s AND c.contype = 'f' ORDER BY c.conname",
        (oid,),
    )
    found = []
    for name, keys, parent_keys, parent, rule, parent_oid in cur.fetchall():
        cur.execute(
            "SELECT attnum, attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0",
            (parent_oid,),
        )
        parent_names = {int(n): str(a) for n, a in cur.fetchall()}
        for key, parent_key in zip(keys, parent_keys, strict=True):
            found.append(
                ForeignKey(
                    names[int(key)],
                    str(parent),
                    parent_names[int(parent_key)],
                    _ON_DELETE[rule],
                    str(name),
                )
            )
    return found


def read_all(
    con: Any, which: str = CURRENT, leave_out: tuple[str, ...] = ()
) -> tuple[FullSchema, list[SchemaObject]]:
    """One schema's tables and other objects, and its CREATE INDEX statements."""
    tables: dict[str, Table] = {}
    others: dict[str, SchemaObject] = {}
    created: list[SchemaObject] = []
    with con.cursor() as cur:
        namespace = _namespace(cur, which)
        if namespace is None:
            return FullSchema({}, {}), []
        for oid, name in _tables(cur, namespace):
            if name.lower() in leave_out:
                continue
            columns, names, generated = _columns(cur, oid)
            indexes = []
            for index, sql in _indexes(cur, oid, names):
                if set(index.columns) & set(generated):
                    others[index.name.lower()] = SchemaObject(
                        "index", index.name, name, sql
                    )
                    continue
                indexes.append(index)
                if index.origin == "c":
                    created.append(SchemaObject("index", index.name, name, sql))
            for column, sql in generated.items():
                key = f"{name}.{column}".lower()
                others[key] = SchemaObject(
                    "generated column", f"{name}.{column}", name, sql
                )
            tables[name.lower()] = Table(
                name,
                tuple(columns),
                tuple(indexes),
                tuple(_foreign_keys(cur, oid, names)),
            )
        cur.execute(
            "SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c "
            "WHERE c.relnamespace = %s AND c.relkind IN ('v', 'm')",
            (namespace,),
        )
        for view, definition in cur.fetchall():
            others[str(view).lower()] = SchemaObject(
                "view", str(view), "", str(definition)
            )
        cur.execute(
            "SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = %s "
            "AND NOT t.tgisinternal",
            (namespace,),
        )
        for trigger, table, definition in cur.fetchall():
            if str(table).lower() not in leave_out:
                others[str(trigger).lower()] = SchemaObject(
                    "trigger", str(trigger), str(table), str(definition)
                )
    return FullSchema(tables, others), created


def read(con: Any, which: str = CURRENT, leave_out: tuple[str, ...] = ()) -> FullSchema:
    """One schema's tables, plus its views, triggers and generated columns by name."""
    return read_all(con, which, leave_out)[0]


def user_tables(con: Any, leave_out: tuple[str, ...] = ()) -> list[str]:
    """Tables of the current schema, except those left out."""
    with con.cursor() as cur:
        namespace = _namespace(cur, CURRENT)
        if namespace is None:
            return []
        return [n for _, n in _tables(cur, namespace) if n.lower() not in leave_out]


def schema_of_script(con: Any, statements: list[str]) -> FullSchema:
    """The schema a DDL script creates, built in pg_temp and rolled back.

    Runs in one transaction on con (autocommit) with search_path set to
    this session's temporary schema, so the script's unqualified names land
    there and nothing of it survives the ROLLBACK: no scratch database and
    no CREATE privilege needed, only TEMPORARY (granted to PUBLIC).
    """
    with con.cursor() as cur:
        cur.execute("BEGIN")
        try:
            cur.execute("SET LOCAL search_path = pg_temp")
            for statement in statements:
                cur.execute(statement)
            return read(con, TEMPORARY)
        finally:
            cur.execute("ROLLBACK")
