"""db/'s layers as a user meets them: what an import loads, where engine code lives.

import-linter checks the import graph (pyproject.toml); these check what
it cannot: which modules a real import or a real request loads, and that
no engine-specific SQL is written outside the engine packages.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

ENGINE_PACKAGES = (
    REPO / "db" / "engines" / "sqlite",
    REPO / "db" / "engines" / "postgres",
)
# SQL only one engine speaks: its statements, catalogs, functions and syntax.
ENGINE_SQL = re.compile(
    r"\bPRAGMA\b|\bsqlite_\w+|\bBEGIN IMMEDIATE\b|\bMATCH\b|\bfts[345]\b|"
    r"\bAUTOINCREMENT\b|\browid\b|\bGLOB\b|\bpg_\w+|::\w|\b(?:to_)?tsvector\b|"
    r"\btsquery\b|\bts_\w+\s*\(|\bCONCURRENTLY\b|\bBIGSERIAL\b|\bSERIAL\b|"
    r"\bcurrent_schema\b|\binformation_schema\b|\bSET LOCAL\b|\bILIKE\b",
    re.IGNORECASE,
)
# A string holding SQL (or a piece of it): an upper-case keyword anywhere,
# or a comment line of a generated file.
SQL_TEXT = re.compile(
    r"^\s*--|\b(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|PRAGMA|BEGIN|"
    r"COMMIT|ROLLBACK|SET|WITH|VACUUM|LOCK|REINDEX|EXPLAIN|ANALYZE|FROM|JOIN|"
    r"WHERE|PRIMARY KEY|REFERENCES|INDEX|TABLE)\b"
)


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running code."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_import_db_loads_nothing() -> None:
    """`import db` loads no layer of it, and not Pony."""
    loaded = loaded_after("import db")
    assert {m for m in loaded if m.startswith("db.")} == set()
    assert "pony" not in loaded


def test_the_domain_loads_neither_the_tooling_nor_an_engine() -> None:
    """Importing every domain module loads no runner, no schema tooling, no engine."""
    domain = sorted(p.stem for p in (REPO / "db" / "domain").glob("[a-z]*.py"))
    loaded = loaded_after("\n".join(f"import db.domain.{m}" for m in domain))
    assert "db.domain.entities" in loaded
    above = {
        m
        for m in loaded
        if m.startswith(("db.migrations", "db.schema", "db.migrate", "db.database"))
        or m.startswith(("db.engines.sqlite", "db.engines.postgres"))
    }
    assert above == set()
    assert not {"sqlite3", "psycopg2"} & loaded


def test_serving_on_sqlite_never_loads_psycopg2(tmp_path: Path) -> None:
    """The service opened on SQLite, answering reads and a write: psycopg2 stays unloaded."""
    code = f"""
import falcon.testing
from service.app import create_app
from service.config import Settings
settings = Settings(database_path={str(tmp_path / "db.sqlite3")!r}, admin_token="x" * 32)
client = falcon.testing.TestClient(create_app(settings))
headers = {{"Authorization": "Bearer " + "x" * 32}}
assert client.simulate_get("/healthz").status_code == 200
assert client.simulate_put(
    "/v1/metadata/k", json={{"value": "v"}}, headers=headers
).status_code in (200, 201)
assert client.simulate_get("/v1/metadata/k", headers=headers).status_code == 200
"""
    loaded = loaded_after(code)
    assert "db.engines.sqlite.engine" in loaded
    assert "psycopg2" not in loaded
    assert not {m for m in loaded if m.startswith("db.engines.postgres")}


def _python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def _outside_engines(path: Path) -> bool:
    return not any(path.is_relative_to(package) for package in ENGINE_PACKAGES)


@pytest.mark.parametrize("driver", ["sqlite3", "psycopg2"])
def test_drivers_are_imported_only_by_their_engine_package(driver: str) -> None:
    """No module of db/ or service/ outside db/engines/<engine>/ imports a driver."""
    found = []
    for path in _python_files(REPO / "db", REPO / "service"):
        if not _outside_engines(path):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            if any(name.split(".")[0] == driver for name in names):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == []


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are docstrings."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(
            node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
        ):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
            ):
                ids.add(id(body[0].value))
    return ids


def engine_sql_outside_engines() -> list[str]:
    """Strings holding engine-specific SQL in db/ and service/ outside the engines."""
    found = []
    for path in _python_files(REPO / "db", REPO / "service"):
        if not _outside_engines(path):
            continue
        tree = ast.parse(path.read_text())
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and SQL_TEXT.search(node.value)
                and ENGINE_SQL.search(node.value)
            ):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    return found


def test_no_engine_specific_sql_outside_the_engine_packages() -> None:
    """SQL only one engine speaks is written in that engine's package (or a migration)."""
    assert engine_sql_outside_engines() == []


def test_the_engine_sql_check_finds_what_it_looks_for() -> None:
    """The check flags SQLite's and PostgreSQL's own SQL, and passes portable SQL."""
    for text in (
        "PRAGMA foreign_keys = ON",
        "SELECT name FROM sqlite_master",
        "SELECT pg_advisory_xact_lock($number)",
        "SELECT $x::int",
        "CREATE INDEX CONCURRENTLY ix ON t (c)",
        "-- and runs PRAGMA foreign_key_check before COMMIT",
        '"id" SERIAL PRIMARY KEY',
    ):
        assert SQL_TEXT.search(text)
        assert ENGINE_SQL.search(text), text
    portable = "SELECT 1 FROM memberships WHERE conversation_id = $c AND user_id = $u"
    assert SQL_TEXT.search(portable)
    assert not ENGINE_SQL.search(portable)
