"""transfer: a populated SQLite database moves to PostgreSQL and answers the same."""

from __future__ import annotations

from pathlib import Path

import falcon.testing
import psycopg2
import pytest

from db.database import engine_for, open_database
from db.target import PostgresTarget
from service.app import create_app
from service.config import Settings
from tests.helpers import run_cli, service_env
from tests.messaging_helpers import ADMIN_TOKEN, bearer, make_user, post, start
from tests.test_search_parity import BASE, HAND

pytestmark = pytest.mark.slow


def snapshot(
    client: falcon.testing.TestClient, token: str, cid: int
) -> dict[str, object]:
    """What the API answers about the data, for comparing two engines."""
    auth = bearer(token)
    return {
        "me": client.simulate_get("/v1/me", headers=auth).json,
        "conversations": client.simulate_get("/v1/conversations", headers=auth).json,
        "conversation": client.simulate_get(
            f"/v1/conversations/{cid}", headers=auth
        ).json,
        "messages": client.simulate_get(
            f"/v1/conversations/{cid}/messages", headers=auth
        ).json,
        "search": {
            q: client.simulate_get("/v1/search", params={"q": q}, headers=auth).json
            for q, _ in HAND
        },
        "metadata": client.simulate_get(
            "/v1/metadata", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ).json,
    }


def pg_env(tmp_path: Path, url: str) -> dict[str, str]:
    """The environment of a command that works on the PostgreSQL database url."""
    env = service_env(tmp_path / "unused.sqlite3", database_url=url)
    del env["SERVICE_DATABASE_PATH"]
    return env


def test_transfer_moves_every_row_and_the_api_answers_the_same(
    tmp_path: Path, pg_url: str
) -> None:
    """Rows, ids, tokens and the search index arrive; new ids continue after the old.

    Search answers the parity suite's hand-written queries exactly as before.
    """
    sqlite_file = tmp_path / "db.sqlite3"
    settings = Settings(
        database_path=sqlite_file, admin_token=ADMIN_TOKEN, search_rate=100_000
    )
    database = open_database(sqlite_file)
    client = falcon.testing.TestClient(create_app(settings, database=database))
    ann, bob = make_user(client, "ann"), make_user(client, "bob")
    cid = start(client, ann, ["bob"], "Plans")
    for text in (
        "Lunch on Friday?",
        "<b>lunch</b> & dinner",
        "see you",
        *BASE.values(),
    ):
        post(client, bob, cid, text)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    client.simulate_put("/v1/metadata/app.name", json={"value": "demo"}, headers=admin)
    before = snapshot(client, ann, cid)
    database.close()

    moved = run_cli("transfer", str(sqlite_file), env=pg_env(tmp_path, pg_url))
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "verified" in moved.stdout
    assert "s3cret" not in moved.stdout

    pg_settings = Settings(
        database_url=pg_url, admin_token=ADMIN_TOKEN, search_rate=100_000
    )
    pg_database = open_database(engine=engine_for(pg_settings.target))
    try:
        pg_client = falcon.testing.TestClient(
            create_app(pg_settings, database=pg_database)
        )
        after = snapshot(pg_client, ann, cid)
        assert sum(len(v["items"]) for v in before["search"].values()) > 50
        assert after == before  # old tokens still work; the same hits, same order
        new = post(pg_client, ann, cid, "after the move")
        assert new["id"] == max(m["id"] for m in before["messages"]["items"]) + 1
        carol = make_user(pg_client, "carol")
        assert pg_client.simulate_get("/v1/me", headers=bearer(carol)).json["id"] == 3
    finally:
        pg_database.close()


def test_transfer_refuses_a_target_that_holds_rows(tmp_path: Path, pg_url: str) -> None:
    """A second transfer into the same database is refused and changes nothing."""
    sqlite_file = tmp_path / "db.sqlite3"
    open_database(sqlite_file).close()
    env = pg_env(tmp_path, pg_url)
    con = psycopg2.connect(pg_url)
    try:
        assert run_cli("transfer", str(sqlite_file), env=env).returncode == 0
        with con, con.cursor() as cur:
            cur.execute(
                "INSERT INTO app_metadata (key, value, updated_at) "
                "VALUES ('x', 'y', now())"
            )
        again = run_cli("transfer", str(sqlite_file), env=env)
        assert again.returncode == 1
        assert "already holds rows in app_metadata" in again.stderr
        with con, con.cursor() as cur:
            cur.execute("SELECT count(*) FROM app_metadata")
            assert cur.fetchone()[0] == 1
    finally:
        con.close()


def test_transfer_needs_a_postgres_target(tmp_path: Path) -> None:
    """Without SERVICE_DATABASE_URL, transfer says what it needs and exits 2."""
    result = run_cli(
        "transfer",
        str(tmp_path / "x.sqlite3"),
        env=service_env(tmp_path / "db.sqlite3"),
    )
    assert result.returncode == 2
    assert "SERVICE_DATABASE_URL" in result.stderr


def test_target_describe_hides_the_password(pg_url: str) -> None:
    """The URL the tests use has a password, and describe() never shows it."""
    target = PostgresTarget(pg_url)
    password = pg_url.split(":")[2].split("@")[0]
    assert password
    assert password not in target.describe()
