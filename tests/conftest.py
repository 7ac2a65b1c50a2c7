"""Fixtures: a migrated template database, settings, the app, a client."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import pytest

from db import Database, open_database
from service.app import create_app
from service.config import Settings
from tests.pg import PostgresServer, find_bindir

_database_names = itertools.count(1)


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


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """The URL of an empty database of this test's own; dropped afterwards."""
    name = f"test_{os.getpid()}_{next(_database_names)}"
    url = postgres.create_database(name)
    yield url
    postgres.drop_database(name)


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file with every migration applied, copied per test."""
    path = tmp_path_factory.mktemp("template") / "db.sqlite3"
    database = open_database(path)
    database.close()
    return path


@pytest.fixture
def db_path(tmp_path: Path, migrated: Path) -> Path:
    """This test's own copy of the migrated database."""
    target = tmp_path / "db.sqlite3"
    shutil.copy(migrated, target)
    return target


@pytest.fixture
def settings(db_path: Path) -> Settings:
    """Settings pointing at this test's database."""
    return Settings(database_path=db_path)


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    """The opened database (migrated, mapped, checked); closed afterwards."""
    opened = open_database(settings.database_path)
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
