"""Fixtures: a migrated template database per engine, settings, the app, a client.

Every test that uses `target` (directly or through `settings`, `database`,
`app` or `client`) runs on SQLite and on PostgreSQL: pytest_generate_tests
parametrizes `engine_name`. `@pytest.mark.engines("sqlite")` narrows that;
`engines(..., "pgbouncer")` adds PostgreSQL through the tests' pgbouncer.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import pytest

from db.database import Database, engine_for, open_database
from db.target import DatabaseTarget, PostgresTarget, SqliteTarget
from service.app import create_app, open_for
from service.config import Settings
from tests.engines import ENGINES, POOLED, settings_for
from tests.pg import PostgresServer, find_bindir
from tests.pgbouncer import PgBouncer, find_pgbouncer

_database_names = itertools.count(1)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that needs a target once per engine (or per engine marked)."""
    if "engine_name" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("engines")
    names = tuple(marker.args) if marker else ENGINES
    unknown = set(names) - {*ENGINES, POOLED}
    if unknown or not names:
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid}: engines() takes some of "
            f"{(*ENGINES, POOLED)}"
        )
    metafunc.parametrize("engine_name", names)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this test session (initdb + pg_ctl, free port).

    Skips where Debian's postgresql package is missing, unless
    SERVICE_REQUIRE_POSTGRES=1 (CI), which makes that a failure.
    """
    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL server binaries not found (apt-get install postgresql)"
        if os.environ.get("SERVICE_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = PostgresServer(bindir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pgbouncer(postgres: PostgresServer) -> Iterator[PgBouncer]:
    """Debian's pgbouncer in transaction pooling mode before the session's server.

    Started from docs/pgbouncer.ini. Skips where pgbouncer is missing,
    unless SERVICE_REQUIRE_POSTGRES=1 (CI), which makes that a failure.
    """
    binary = find_pgbouncer()
    if binary is None:
        message = "pgbouncer not found (apt-get install pgbouncer)"
        if os.environ.get("SERVICE_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    bouncer = PgBouncer(binary, postgres).start()
    yield bouncer
    bouncer.stop()


def _new_database_name() -> str:
    return f"test_{os.getpid()}_{next(_database_names)}"


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """The URL of an empty database of this test's own; dropped afterwards."""
    name = _new_database_name()
    url = postgres.create_database(name)
    yield url
    postgres.drop_database(name)


@pytest.fixture(scope="session")
def pg_template(postgres: PostgresServer) -> str:
    """A PostgreSQL database with every migration applied, copied per test."""
    name = "template_migrated"
    url = postgres.create_database(name)
    open_database(engine=engine_for(PostgresTarget(url))).close()
    postgres.terminate_sessions(name)  # CREATE DATABASE ... TEMPLATE needs none
    return name


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file with every migration applied, copied per test."""
    path = tmp_path_factory.mktemp("template") / "db.sqlite3"
    database = open_database(path)
    database.close()
    return path


@pytest.fixture
def db_path(tmp_path: Path, migrated: Path) -> Path:
    """This test's own copy of the migrated SQLite file (SQLite-only tests)."""
    target = tmp_path / "db.sqlite3"
    shutil.copy(migrated, target)
    return target


@pytest.fixture
def target(
    request: pytest.FixtureRequest, engine_name: str
) -> Iterator[DatabaseTarget]:
    """This test's own migrated database: a copy of the engine's template.

    SQLite: the file db_path. PostgreSQL: CREATE DATABASE ... TEMPLATE of
    the session's migrated database (a file copy), dropped afterwards.
    """
    if engine_name == "sqlite":
        yield SqliteTarget(request.getfixturevalue("db_path"))
        return
    bouncer = request.getfixturevalue("pgbouncer") if engine_name == POOLED else None
    if "db_path" in request.fixturenames:
        # db_path would be a file nobody writes to: the test would pass on nothing.
        raise pytest.UsageError(
            f"{request.node.nodeid} reads db_path on PostgreSQL: use target "
            "(tests.engines.rows) or mark it engines('sqlite')"
        )
    server: PostgresServer = request.getfixturevalue("postgres")
    template: str = request.getfixturevalue("pg_template")
    name = _new_database_name()
    url = server.create_database(name, template=template)
    if bouncer is None:
        yield PostgresTarget(url)
    else:
        # Requests through the pooler; the runner and the tooling directly.
        yield PostgresTarget(bouncer.url(name), direct_url=url)
    server.drop_database(name)


@pytest.fixture
def settings(target: DatabaseTarget) -> Settings:
    """Settings pointing at this test's database."""
    return settings_for(target)


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    """The opened database (migrated, mapped, checked); closed afterwards."""
    opened = open_for(settings)
    yield opened
    opened.close()


@pytest.fixture
def app(settings: Settings, database: Database) -> falcon.App:  # type: ignore[type-arg]
    """The WSGI app on this test's database."""
    return create_app(settings, database=database)


@pytest.fixture
def client(app: falcon.App) -> falcon.testing.TestClient:  # type: ignore[type-arg]
    """An in-process client for the app."""
    return falcon.testing.TestClient(app)
