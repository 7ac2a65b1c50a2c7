"""Fixtures: a migrated template database, settings, the app, a client."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import pytest

from db import Database, open_database
from service.app import create_app
from service.config import Settings


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
