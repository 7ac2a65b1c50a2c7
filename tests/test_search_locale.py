"""Search on a PostgreSQL database created with another locale answers the same."""

from __future__ import annotations

import falcon.testing
import pytest
from psycopg2 import sql

from db.database import engine_for, open_database
from db.target import PostgresTarget
from service.app import create_app
from service.config import Settings
from tests.messaging_helpers import ADMIN_TOKEN, bearer, make_user, post, start
from tests.pg import PostgresServer
from tests.test_search_parity import BASE, COPIES, HAND


@pytest.mark.parametrize("ctype", ["C", "POSIX"])
def test_a_c_locale_database_finds_the_same(
    postgres: PostgresServer, ctype: str
) -> None:
    """A database whose LC_CTYPE is not the server's answers the hand-written queries."""
    name = f"search_locale_{ctype.lower()}"
    postgres._execute(  # the test server's own admin connection
        sql.SQL(
            "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' "
            "LC_COLLATE {} LC_CTYPE {}"
        ).format(sql.Identifier(name), sql.Literal(ctype), sql.Literal(ctype))
    )
    url = postgres.url(name)
    database = open_database(engine=engine_for(PostgresTarget(url)))
    try:
        settings = Settings(
            database_url=url, admin_token=ADMIN_TOKEN, search_rate=100_000
        )
        client = falcon.testing.TestClient(create_app(settings, database=database))
        ann = make_user(client, "ann")
        cid = start(client, ann, [])
        labels = {}
        for _ in range(COPIES):
            for label, body in BASE.items():
                labels[post(client, ann, cid, body)["id"]] = label
        wrong = {}
        for q, expected in HAND:
            result = client.simulate_get(
                "/v1/search", params={"q": q, "limit": 50}, headers=bearer(ann)
            )
            got = {labels[item["message_id"]] for item in result.json["items"]}
            if got != expected:
                wrong[q] = (sorted(got), sorted(expected))
        assert wrong == {}
    finally:
        database.close()
        postgres.drop_database(name)
