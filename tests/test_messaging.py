"""The messaging API: users, tokens, conversations, messages, search."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from db.database import Database
from db.target import DatabaseTarget, SqliteTarget
from service import auth
from service.app import create_app
from tests.engines import execute, rows, settings_for
from tests.messaging_helpers import (
    ADMIN,
    ADMIN_TOKEN,
    bearer,
    make_user,
    post,
    start,
)
from tests.test_api import assert_problem

Client = falcon.testing.TestClient

# The messaging flow runs through a transaction-pooling pgbouncer too.
pytestmark = pytest.mark.engines("sqlite", "postgres", "pgbouncer")


@pytest.fixture
def client(target: DatabaseTarget, database: Database) -> Client:
    """A client for an app with SERVICE_ADMIN_TOKEN set."""
    settings = settings_for(target, admin_token=ADMIN_TOKEN)
    return falcon.testing.TestClient(create_app(settings, database=database))


@pytest.fixture
def open_client(target: DatabaseTarget, database: Database) -> Client:
    """A client for an app without an admin token (local development)."""
    return falcon.testing.TestClient(
        create_app(settings_for(target), database=database)
    )


def test_create_user_then_taken_handle_is_409(client: Client) -> None:
    """POST /v1/users is 201 with the user, and 409 for a taken handle."""
    first = client.simulate_post(
        "/v1/users", json={"handle": "ann", "display_name": "Ann"}, headers=ADMIN
    )
    assert first.status_code == 201
    assert first.json["handle"] == "ann"
    assert first.json["created_at"].endswith("Z")
    again = client.simulate_post(
        "/v1/users", json={"handle": "ann", "display_name": "Other"}, headers=ADMIN
    )
    assert "taken" in assert_problem(again, 409)["detail"]


@pytest.mark.parametrize("handle", ["ab", "Ann", "a-b-c", "x" * 33, "é_é", ""])
def test_invalid_handles_are_422(client: Client, handle: str) -> None:
    """Handles are 3-32 of [a-z0-9_]; anything else is 422."""
    result = client.simulate_post(
        "/v1/users", json={"handle": handle, "display_name": "X"}, headers=ADMIN
    )
    body = assert_problem(result, 422)
    assert body["errors"][0]["pointer"] == "#/handle"


def test_admin_routes_are_404_without_admin_token(open_client: Client) -> None:
    """With SERVICE_ADMIN_TOKEN unset the admin routes do not exist."""
    result = open_client.simulate_post(
        "/v1/users", json={"handle": "ann", "display_name": "Ann"}, headers=ADMIN
    )
    assert_problem(result, 404)
    assert_problem(open_client.simulate_post("/v1/users/ann/tokens"), 404)
    assert_problem(open_client.simulate_delete("/v1/tokens/1"), 404)


def test_admin_routes_need_the_admin_token(client: Client) -> None:
    """A missing or wrong admin token is 401 with WWW-Authenticate."""
    for headers in ({}, bearer("wrong"), bearer(ADMIN_TOKEN + "x")):
        result = client.simulate_post(
            "/v1/users", json={"handle": "ann", "display_name": "Ann"}, headers=headers
        )
        assert_problem(result, 401)
        assert result.headers["www-authenticate"].startswith("Bearer")


def test_metadata_requires_admin_token_when_set(client: Client) -> None:
    """With an admin token set, every /v1/metadata method needs it."""
    body = {"value": "v"}
    assert_problem(client.simulate_put("/v1/metadata/k", json=body), 401)
    assert_problem(client.simulate_get("/v1/metadata"), 401)
    assert_problem(client.simulate_get("/v1/metadata/k"), 401)
    assert_problem(client.simulate_delete("/v1/metadata/k"), 401)
    user_token = make_user(client, "ann")
    assert_problem(client.simulate_get("/v1/metadata", headers=bearer(user_token)), 401)
    put = client.simulate_put("/v1/metadata/k", json=body, headers=ADMIN)
    assert put.status_code == 201
    assert client.simulate_get("/v1/metadata/k", headers=ADMIN).json["value"] == "v"


def test_metadata_is_open_without_admin_token(open_client: Client) -> None:
    """With no admin token configured, /v1/metadata stays open."""
    put = open_client.simulate_put("/v1/metadata/k", json={"value": "v"})
    assert put.status_code == 201


def test_me_answers_the_token_owner(client: Client) -> None:
    """GET /v1/me returns the user the bearer token belongs to."""
    token = make_user(client, "ann")
    me = client.simulate_get("/v1/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json["handle"] == "ann"
    assert me.json["display_name"] == "Ann"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YW5uOnB3"},
        {"Authorization": "Bearer sft_not-a-real-token"},
        {"Authorization": "Bearer " + ADMIN_TOKEN},  # the admin is not a user
    ],
)
def test_missing_or_unknown_token_is_401(
    client: Client, headers: dict[str, str]
) -> None:
    """Without a valid user token every user route is 401 with WWW-Authenticate."""
    result = client.simulate_get("/v1/me", headers=headers)
    assert_problem(result, 401)
    assert result.headers["www-authenticate"] == auth.CHALLENGE


def database_files(
    target: DatabaseTarget, request: pytest.FixtureRequest
) -> list[Path]:
    """The files holding the database's bytes, written out now.

    SQLite: the file and its WAL. PostgreSQL: after a CHECKPOINT (shared
    buffers written to disk), the database's own directory and the WAL
    segment being written.
    """
    if isinstance(target, SqliteTarget):
        path = target.path
        return [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    data = request.getfixturevalue("postgres").folder / "data"
    ((oid, wal),) = rows(
        target,
        "SELECT oid, pg_walfile_name(pg_current_wal_lsn()) FROM pg_database "
        "WHERE datname = current_database()",
    )
    execute(target, "CHECKPOINT")
    return [p for p in (data / "base" / str(oid)).iterdir() if p.is_file()] + [
        data / "pg_wal" / wal
    ]


def test_token_is_stored_hashed_only(
    client: Client, target: DatabaseTarget, request: pytest.FixtureRequest
) -> None:
    """The plain token is nowhere in the database files; its SHA-256 is."""
    token = make_user(client, "ann")
    assert client.simulate_get("/v1/me", headers=bearer(token)).status_code == 200
    raw = b"".join(path.read_bytes() for path in database_files(target, request))
    assert auth.token_hash(token) in raw
    assert token.encode() not in raw
    assert token.removeprefix(auth.TOKEN_PREFIX).encode() not in raw


def test_token_has_32_random_bytes() -> None:
    """A token carries 32 random bytes (43 URL-safe characters) and never repeats."""
    tokens = {auth.new_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(t.removeprefix(auth.TOKEN_PREFIX)) == 43 for t in tokens)


def test_revoked_token_fails_at_once(client: Client) -> None:
    """DELETE /v1/tokens/{id} makes the very next request with it 401."""
    make_user(client, "ann")
    issued = client.simulate_post("/v1/users/ann/tokens", headers=ADMIN).json
    other = client.simulate_post("/v1/users/ann/tokens", headers=ADMIN).json
    headers = bearer(issued["token"])
    assert client.simulate_get("/v1/me", headers=headers).status_code == 200
    revoked = client.simulate_delete(f"/v1/tokens/{issued['id']}", headers=ADMIN)
    assert revoked.status_code == 204
    assert_problem(client.simulate_get("/v1/me", headers=headers), 401)
    # The user's other token is untouched.
    assert (
        client.simulate_get("/v1/me", headers=bearer(other["token"])).status_code == 200
    )
    assert_problem(client.simulate_delete("/v1/tokens/999", headers=ADMIN), 404)


def test_token_for_unknown_user_is_404(client: Client) -> None:
    """Issuing a token for a handle nobody has is 404."""
    assert_problem(client.simulate_post("/v1/users/nobody/tokens", headers=ADMIN), 404)


def test_token_comparison_is_constant_time(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both the admin and the user token are checked with hmac.compare_digest."""
    token = make_user(client, "ann")
    seen: list[tuple[bytes, bytes]] = []
    real: Callable[[Any, Any], bool] = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert client.simulate_get("/v1/me", headers=bearer(token)).status_code == 200
    assert seen == [(auth.token_hash(token), auth.token_hash(token))]
    seen.clear()
    client.simulate_post("/v1/users/ann/tokens", headers=ADMIN)
    assert seen == [(auth.token_hash(ADMIN_TOKEN), auth.token_hash(ADMIN_TOKEN))]


def _last_used(target: DatabaseTarget) -> Any:
    ((used,),) = rows(target, "SELECT last_used_at FROM api_tokens")
    return used


def test_token_use_is_recorded_off_the_request_path(
    client: Client, database: Database, target: DatabaseTarget
) -> None:
    """A GET with a token writes nothing itself; the noted use is written in the batch after."""
    token = make_user(client, "ann")
    assert client.simulate_get("/v1/me", headers=bearer(token)).status_code == 200
    assert _last_used(target) is None  # the read request did not write
    assert database.token_uses.pending() == 1
    assert database.token_uses.flush() == 1
    assert _last_used(target) is not None
    # Within the touch interval another use is not news: nothing to write.
    assert client.simulate_get("/v1/me", headers=bearer(token)).status_code == 200
    assert database.token_uses.pending() == 0


def test_noted_token_uses_are_written_at_close(
    client: Client, database: Database, target: DatabaseTarget
) -> None:
    """Closing the database writes the uses still waiting for their batch."""
    token = make_user(client, "ann")
    client.simulate_get("/v1/me", headers=bearer(token))
    database.close()
    assert _last_used(target) is not None


def test_conversation_lifecycle(client: Client) -> None:
    """Create, read, add and remove members; the creator is a member and the owner."""
    ann, bob = make_user(client, "ann"), make_user(client, "bob")
    make_user(client, "cat")
    created = client.simulate_post(
        "/v1/conversations",
        json={"title": "Plans", "members": ["bob", "bob"]},
        headers=bearer(ann),
    )
    assert created.status_code == 201
    cid = created.json["id"]
    assert [m["handle"] for m in created.json["members"]] == ["ann", "bob"]
    assert created.json["created_by"] == "ann"
    assert created.json["owner"] == "ann"
    got = client.simulate_get(f"/v1/conversations/{cid}", headers=bearer(bob))
    assert got.json["title"] == "Plans"
    assert got.json["owner"] == "ann"
    added = client.simulate_post(
        f"/v1/conversations/{cid}/members", json={"handle": "cat"}, headers=bearer(ann)
    )
    assert added.status_code == 201
    assert added.json["handle"] == "cat"
    again = client.simulate_post(
        f"/v1/conversations/{cid}/members", json={"handle": "cat"}, headers=bearer(ann)
    )
    assert again.status_code == 200
    removed = client.simulate_delete(
        f"/v1/conversations/{cid}/members/bob", headers=bearer(ann)
    )
    assert removed.status_code == 204
    assert_problem(
        client.simulate_get(f"/v1/conversations/{cid}", headers=bearer(bob)), 404
    )
    assert_problem(
        client.simulate_delete(
            f"/v1/conversations/{cid}/members/bob", headers=bearer(ann)
        ),
        404,
    )
    unknown = client.simulate_post(
        f"/v1/conversations/{cid}/members", json={"handle": "zed"}, headers=bearer(ann)
    )
    assert_problem(unknown, 404)


def test_unknown_members_are_422_without_saying_which(client: Client) -> None:
    """An unknown handle among the members is 422; the answer does not say which."""
    ann = make_user(client, "ann")
    make_user(client, "bob")
    answers = []
    for members in (["nobody"], ["bob", "nobody"], ["nobody", "bob"]):
        result = client.simulate_post(
            "/v1/conversations",
            json={"title": "x", "members": members},
            headers=bearer(ann),
        )
        body = assert_problem(result, 422)
        answers.append((body["detail"], body["errors"]))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][1] == [{"detail": "unknown handle(s)", "pointer": "#/members"}]
    assert "bob" not in str(answers)
    assert "nobody" not in str(answers)


def test_conversations_list_by_recent_activity(client: Client) -> None:
    """GET /v1/conversations lists mine, latest activity first, with a cursor."""
    ann, bob = make_user(client, "ann"), make_user(client, "bob")
    ids = [start(client, ann, [], title=f"c{i}") for i in range(5)]
    start(client, bob, [])  # not ann's
    post(client, ann, ids[1], "bump")
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.simulate_get(
            "/v1/conversations", params=params, headers=bearer(ann)
        )
        assert page.status_code == 200, page.text
        seen += [c["id"] for c in page.json["items"]]
        cursor = page.json["next"]
        if cursor is None:
            break
    assert seen == [ids[1], ids[4], ids[3], ids[2], ids[0]]
    bad = client.simulate_get("/v1/conversations?cursor=%%%", headers=bearer(ann))
    assert assert_problem(bad, 422)["errors"][0]["parameter"] == "cursor"


def test_message_errors(client: Client) -> None:
    """Message bodies are 1 char to 32 KiB; before and after exclude each other."""
    ann = make_user(client, "ann")
    cid = start(client, ann, [])
    url = f"/v1/conversations/{cid}/messages"
    assert_problem(
        client.simulate_post(url, json={"body": ""}, headers=bearer(ann)), 422
    )
    assert_problem(
        client.simulate_post(url, json={"body": 5}, headers=bearer(ann)), 422
    )
    big = client.simulate_post(url, json={"body": "é" * 16_385}, headers=bearer(ann))
    assert_problem(big, 413)
    assert post(client, ann, cid, "x" * 32_768)["body"] == "x" * 32_768
    assert_problem(
        client.simulate_post(
            url, body="{", headers={**bearer(ann), "Content-Type": "application/json"}
        ),
        400,
    )
    assert_problem(
        client.simulate_get(url + "?before=5&after=1", headers=bearer(ann)), 422
    )
    assert_problem(client.simulate_get(url + "?limit=0", headers=bearer(ann)), 422)
    assert_problem(
        client.simulate_get("/v1/conversations/999/messages", headers=bearer(ann)), 404
    )


def test_delete_own_message_only(client: Client) -> None:
    """Only the author deletes a message (403 for others); then it is gone."""
    ann, bob = make_user(client, "ann"), make_user(client, "bob")
    cid = start(client, ann, ["bob"])
    mid = post(client, ann, cid, "mine")["id"]
    url = f"/v1/conversations/{cid}/messages/{mid}"
    assert_problem(client.simulate_delete(url, headers=bearer(bob)), 403)
    assert client.simulate_delete(url, headers=bearer(ann)).status_code == 204
    assert_problem(client.simulate_delete(url, headers=bearer(ann)), 404)
    page = client.simulate_get(f"/v1/conversations/{cid}/messages", headers=bearer(bob))
    assert page.json["items"] == []


def _walk(
    client: Client,
    token: str,
    cid: int,
    direction: str,
    start_at: int,
    on_page: Callable[[], None],
) -> list[int]:
    ids: list[int] = []
    cursor: int | None = start_at
    while True:
        params: dict[str, Any] = {"limit": 7}
        if cursor is not None:
            params[direction] = cursor
        page = client.simulate_get(
            f"/v1/conversations/{cid}/messages", params=params, headers=bearer(token)
        )
        assert page.status_code == 200, page.text
        ids += [m["id"] for m in page.json["items"]]
        cursor = page.json["next"]
        on_page()
        if cursor is None:
            return ids


def test_paging_newest_first_while_messages_arrive(client: Client) -> None:
    """Walking ?before= returns every earlier message once, newest first."""
    ann, bob = make_user(client, "ann"), make_user(client, "bob")
    cid = start(client, ann, ["bob"])
    original = [post(client, ann, cid, f"m{i}")["id"] for i in range(30)]
    ids = _walk(
        client,
        bob,
        cid,
        "before",
        None,
        lambda: post(client, ann, cid, "late"),  # type: ignore[arg-type]
    )
    assert ids == sorted(original, reverse=True)


def test_paging_oldest_first_while_messages_arrive(
    client: Client, target: DatabaseTarget
) -> None:
    """Walking ?after= returns every message once, in order, new ones included."""
    ann, bob = make_user(client, "ann"), make_user(client, "bob")
    cid = start(client, ann, ["bob"])
    for i in range(30):
        post(client, bob, cid, f"m{i}")
    arrived = 0

    def arrive() -> None:
        nonlocal arrived
        if arrived < 3:
            post(client, ann, cid, "late")
            arrived += 1

    ids = _walk(client, bob, cid, "after", 0, arrive)
    stored = [r[0] for r in rows(target, "SELECT id FROM messages ORDER BY id")]
    assert arrived == 3
    assert ids == stored
    assert len(ids) == 33


def test_search_finds_highlights_and_forgets_deleted(client: Client) -> None:
    """Search returns escaped, highlighted snippets and drops deleted messages."""
    ann = make_user(client, "ann")
    cid = start(client, ann, [])
    first = post(client, ann, cid, "apple <b>pie</b> recipe")["id"]
    post(client, ann, cid, "apple crumble")
    hits = client.simulate_get("/v1/search", params={"q": "apple"}, headers=bearer(ann))
    assert hits.status_code == 200
    assert len(hits.json["items"]) == 2
    pie = client.simulate_get("/v1/search", params={"q": "pie"}, headers=bearer(ann))
    assert pie.json["items"][0]["snippet"] == (
        "apple &lt;b&gt;<mark>pie</mark>&lt;/b&gt; recipe"
    )
    client.simulate_delete(
        f"/v1/conversations/{cid}/messages/{first}", headers=bearer(ann)
    )
    after = client.simulate_get(
        "/v1/search", params={"q": "apple"}, headers=bearer(ann)
    )
    assert [h["message_id"] for h in after.json["items"]] != [first]
    assert len(after.json["items"]) == 1
    gone = client.simulate_get("/v1/search", params={"q": "pie"}, headers=bearer(ann))
    assert gone.json["items"] == []


@pytest.mark.parametrize(
    "query",
    [
        '"apple',
        "apple AND",
        "OR",
        "NOT apple",
        "NEAR(apple pie, 2)",
        "apple*",
        "^apple",
        "body:apple",
        "nosuchcolumn:apple",
        "(apple",
        "apple)",
        "-apple",
        "+",
        "{body}: apple",
        "a" * 200,
    ],
)
def test_search_syntax_from_users_is_text(client: Client, query: str) -> None:
    """FTS5 syntax characters in ?q= are searched as text, never a 500."""
    ann = make_user(client, "ann")
    cid = start(client, ann, [])
    post(client, ann, cid, "apple pie near the body")
    result = client.simulate_get("/v1/search", params={"q": query}, headers=bearer(ann))
    assert result.status_code == 200, result.text
    assert isinstance(result.json["items"], list)


@pytest.mark.parametrize("query", ['"', "*", "'", "apple ...", "- apple"])
def test_search_refuses_a_word_of_punctuation_alone(client: Client, query: str) -> None:
    """A query word that cannot match is a 422 naming it, never silently dropped."""
    ann = make_user(client, "ann")
    cid = start(client, ann, [])
    post(client, ann, cid, "apple pie")
    result = client.simulate_get("/v1/search", params={"q": query}, headers=bearer(ann))
    assert_problem(result, 422)
    word = next(w for w in query.split() if w != "apple")
    assert repr(word) in result.json["detail"]


def test_search_needs_a_query(client: Client) -> None:
    """An empty or overlong ?q= is 422."""
    ann = make_user(client, "ann")
    assert_problem(client.simulate_get("/v1/search", headers=bearer(ann)), 422)
    long = client.simulate_get(
        "/v1/search", params={"q": "a" * 201}, headers=bearer(ann)
    )
    assert_problem(long, 422)


def test_openapi_documents_the_messaging_routes(client: Client) -> None:
    """/openapi.json lists every new route with its methods."""
    paths = client.simulate_get("/openapi.json").json["paths"]
    expected = {
        "/v1/users": {"post"},
        "/v1/users/{handle}/tokens": {"post"},
        "/v1/tokens/{token_id}": {"delete"},
        "/v1/me": {"get"},
        "/v1/conversations": {"get", "post"},
        "/v1/conversations/{conversation_id}": {"get"},
        "/v1/conversations/{conversation_id}/members": {"post"},
        "/v1/conversations/{conversation_id}/members/{handle}": {"delete"},
        "/v1/conversations/{conversation_id}/messages": {"get", "post"},
        "/v1/conversations/{conversation_id}/messages/{message_id}": {"delete"},
        "/v1/search": {"get"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) == methods, path
