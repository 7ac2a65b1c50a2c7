"""The throwaway PostgreSQL server the tooling and the tests share."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest

from db.engines.postgres import server
from tests import pg
from tests.helpers import needs_postgres_binaries


def test_the_tests_find_the_binaries_as_the_tooling_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without SERVICE_PG_BINDIR, tests/pg.py finds initdb where makemigration does."""
    monkeypatch.delenv("SERVICE_PG_BINDIR", raising=False)
    assert pg.find_bindir() == server.find_bindir()


def test_a_folder_given_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """SERVICE_PG_BINDIR (the tests) and an explicit folder win over PATH and Debian's."""
    monkeypatch.setenv("SERVICE_PG_BINDIR", "/opt/pg/bin")
    assert pg.find_bindir() == Path("/opt/pg/bin")
    assert server.find_bindir("/elsewhere/bin") == Path("/elsewhere/bin")


@needs_postgres_binaries
def test_the_tooling_server_listens_on_its_socket_only_and_goes_away() -> None:
    """makemigration's server: trust on a socket in its folder, no TCP, removed after."""
    with server.throwaway_server() as running:
        folder = running.folder
        con = psycopg2.connect(running.url())
        try:
            with con.cursor() as cur:
                cur.execute("SHOW listen_addresses")
                assert cur.fetchone() == ("",)
                cur.execute("SHOW fsync")
                assert cur.fetchone() == ("off",)
        finally:
            con.close()
        assert str(folder) in running.url()
    assert not folder.exists()


def test_the_tests_server_takes_tcp_with_a_password(
    postgres: pg.PostgresServer,
) -> None:
    """The tests' server (the same class) listens on 127.0.0.1 and wants the password."""
    url = postgres.url()
    assert url.startswith(f"postgresql://postgres:{postgres.password}@127.0.0.1:")
    psycopg2.connect(url).close()
    with pytest.raises(psycopg2.OperationalError, match="password"):
        psycopg2.connect(postgres.url(password=False)).close()
