"""Conversations have an owner: who may add, remove, leave and hand over."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon.testing
import pytest

from db.database import Database
from db.target import DatabaseTarget
from service.app import create_app
from tests.engines import settings_for
from tests.messaging_helpers import ADMIN, ADMIN_TOKEN, bearer, make_user, start
from tests.test_api import assert_problem

if TYPE_CHECKING:  # the module is a plugin: importing it first breaks its rewrite
    from tests.migration_engines import Engine

pytest_plugins = ("tests.migration_engines",)

Client = falcon.testing.TestClient


@pytest.fixture
def client(target: DatabaseTarget, database: Database) -> Client:
    """A client for an app with SERVICE_ADMIN_TOKEN set."""
    settings = settings_for(target, admin_token=ADMIN_TOKEN)
    return falcon.testing.TestClient(create_app(settings, database=database))


@pytest.fixture
def tokens(client: Client) -> dict[str, str]:
    """ann, bob, cat and dan, by handle."""
    return {h: make_user(client, h) for h in ("ann", "bob", "cat", "dan")}


def members(client: Client, token: str, cid: int) -> tuple[str | None, list[str]]:
    """The conversation's owner and member handles, as token's user sees them."""
    got = client.simulate_get(f"/v1/conversations/{cid}", headers=bearer(token))
    assert got.status_code == 200, got.text
    return got.json["owner"], [m["handle"] for m in got.json["members"]]


def add(client: Client, token: str, cid: int, handle: str) -> falcon.testing.Result:
    """POST .../members as token's user."""
    return client.simulate_post(
        f"/v1/conversations/{cid}/members",
        json={"handle": handle},
        headers=bearer(token),
    )


def remove(client: Client, token: str, cid: int, handle: str) -> int:
    """DELETE .../members/{handle} as token's user; the status."""
    return client.simulate_delete(
        f"/v1/conversations/{cid}/members/{handle}", headers=bearer(token)
    ).status_code


def test_only_the_owner_adds_members(client: Client, tokens: dict[str, str]) -> None:
    """A member who is not the owner gets 403 for any handle, known or not."""
    ann, bob = tokens["ann"], tokens["bob"]
    cid = start(client, ann, ["bob"])
    for handle in ("cat", "zed_unknown"):
        refused = assert_problem(add(client, bob, cid, handle), 403)
        assert refused["detail"] == "only the conversation's owner adds members"
    assert add(client, ann, cid, "cat").status_code == 201
    assert members(client, ann, cid) == ("ann", ["ann", "bob", "cat"])


def test_only_the_owner_removes_others_and_anyone_may_leave(
    client: Client, tokens: dict[str, str]
) -> None:
    """Others cannot remove anyone, the owner least of all; everyone may leave."""
    ann, bob = tokens["ann"], tokens["bob"]
    cid = start(client, ann, ["bob", "cat", "dan"])
    assert remove(client, bob, cid, "cat") == 403
    assert remove(client, bob, cid, "ann") == 403
    assert remove(client, tokens["cat"], cid, "cat") == 204  # leaving
    assert remove(client, ann, cid, "dan") == 204
    assert remove(client, ann, cid, "dan") == 404
    assert members(client, ann, cid) == ("ann", ["ann", "bob"])


def test_when_the_owner_leaves_the_longest_standing_member_owns_it(
    client: Client, tokens: dict[str, str]
) -> None:
    """Ownership passes by join order as owners leave; nobody owns an empty one."""
    ann, bob, cat = tokens["ann"], tokens["bob"], tokens["cat"]
    cid = start(client, ann, ["cat"])
    assert add(client, ann, cid, "bob").status_code == 201  # joined after cat
    assert remove(client, ann, cid, "ann") == 204
    assert members(client, bob, cid) == ("cat", ["bob", "cat"])
    assert remove(client, cat, cid, "cat") == 204
    assert members(client, bob, cid) == ("bob", ["bob"])
    assert add(client, bob, cid, "dan").status_code == 201
    assert remove(client, bob, cid, "bob") == 204
    assert remove(client, tokens["dan"], cid, "dan") == 204
    for token in tokens.values():
        assert remove(client, token, cid, "dan") == 404
    # Only the operator reaches an empty conversation; who it adds owns it.
    readded = client.simulate_post(
        f"/v1/admin/conversations/{cid}/members", json={"handle": "ann"}, headers=ADMIN
    )
    assert readded.status_code == 201, readded.text
    assert members(client, ann, cid) == ("ann", ["ann"])


def test_the_owner_hands_ownership_over(client: Client, tokens: dict[str, str]) -> None:
    """PUT .../owner by the owner to a member: 200; by others 403; to others 404."""
    ann, bob = tokens["ann"], tokens["bob"]
    cid = start(client, ann, ["bob"])
    url = f"/v1/conversations/{cid}/owner"
    assert_problem(
        client.simulate_put(url, json={"handle": "bob"}, headers=bearer(bob)), 403
    )
    for handle in ("cat", "zed_unknown"):  # the same answer: nothing to probe
        refused = client.simulate_put(url, json={"handle": handle}, headers=bearer(ann))
        assert assert_problem(refused, 404)["detail"] == (
            f"{handle!r} is not a member of this conversation"
        )
    handed = client.simulate_put(url, json={"handle": "bob"}, headers=bearer(ann))
    assert handed.status_code == 200, handed.text
    assert handed.json["owner"] == "bob"
    assert add(client, ann, cid, "cat").status_code == 403
    assert add(client, bob, cid, "cat").status_code == 201
    assert remove(client, bob, cid, "ann") == 204
    assert_problem(
        client.simulate_put(url, json={"handle": "bob"}, headers=bearer(tokens["dan"])),
        404,
    )


def test_the_operator_adds_and_removes_anyone(
    client: Client, tokens: dict[str, str]
) -> None:
    """The admin token removes even the owner (ownership passes on) and adds anyone."""
    ann, bob = tokens["ann"], tokens["bob"]
    cid = start(client, ann, ["bob"])
    admin = f"/v1/admin/conversations/{cid}/members"
    assert client.simulate_delete(f"{admin}/ann", headers=ADMIN).status_code == 204
    assert members(client, bob, cid) == ("bob", ["bob"])
    added = client.simulate_post(admin, json={"handle": "cat"}, headers=ADMIN)
    assert added.status_code == 201
    assert members(client, bob, cid) == ("bob", ["bob", "cat"])
    assert_problem(client.simulate_delete(f"{admin}/ann", headers=ADMIN), 404)
    assert_problem(
        client.simulate_delete(
            "/v1/admin/conversations/999/members/bob", headers=ADMIN
        ),
        404,
    )
    assert_problem(client.simulate_delete(f"{admin}/bob", headers=bearer(bob)), 401)


def test_listings_name_the_owner(client: Client, tokens: dict[str, str]) -> None:
    """GET /v1/conversations shows each conversation's owner."""
    ann, bob = tokens["ann"], tokens["bob"]
    cid = start(client, ann, ["bob"])
    listed = client.simulate_get("/v1/conversations", headers=bearer(bob)).json
    assert [(c["id"], c["owner"]) for c in listed["items"]] == [(cid, "ann")]


def test_the_migration_gives_existing_conversations_an_owner(engine: Engine) -> None:
    """Before 0004: the creator if still a member, else the first to join, else none."""
    full = engine.folder(name="all")
    owner_file = next(full.glob("*_add_conversation_owner.*"))
    before = engine.folder(name="before")
    for file in before.glob("*.sql"):
        if file.name[:4] >= owner_file.name[:4]:
            file.unlink()
    engine.migrate(before)
    for statement in (
        "INSERT INTO users (id, handle, display_name, created_at) VALUES "
        "(1, 'ann', 'A', '2026-01-01'), (2, 'bob', 'B', '2026-01-01'), "
        "(3, 'cat', 'C', '2026-01-01')",
        "INSERT INTO conversations (id, title, created_by, created_at, "
        "last_message_at) VALUES (1, 'kept', 1, '2026-01-01', '2026-01-01'), "
        "(2, 'left', 1, '2026-01-01', '2026-01-01'), "
        "(3, 'tie', 1, '2026-01-01', '2026-01-01'), "
        "(4, 'empty', 1, '2026-01-01', '2026-01-01')",
        "INSERT INTO memberships (conversation_id, user_id, joined_at) VALUES "
        "(1, 1, '2026-01-01'), (1, 2, '2026-01-01'), "
        "(2, 2, '2026-01-03'), (2, 3, '2026-01-02'), "
        "(3, 3, '2026-01-02'), (3, 2, '2026-01-02')",
    ):
        engine.execute(statement)
    engine.migrate(full)
    owners = engine.query("SELECT id, owner_id FROM conversations ORDER BY id")
    assert owners == [(1, 1), (2, 3), (3, 2), (4, None)]
