"""Input a client controls is validated whole: big integers, control characters, newlines."""

from __future__ import annotations

import base64

import falcon.testing
import pytest
from pony import orm

from db.database import Database
from db.target import DatabaseTarget
from service.app import create_app
from tests.engines import execute, settings_for
from tests.messaging_helpers import ADMIN, ADMIN_TOKEN, bearer, make_user, post, start
from tests.test_api import assert_problem

Client = falcon.testing.TestClient
HUGE = "9" * 25  # far past 2**63
JUST_PAST = str(2**63)


@pytest.fixture
def client(target: DatabaseTarget, database: Database) -> Client:
    """A client for an app with SERVICE_ADMIN_TOKEN set."""
    settings = settings_for(target, admin_token=ADMIN_TOKEN)
    return falcon.testing.TestClient(create_app(settings, database=database))


@pytest.fixture
def ann(client: Client) -> str:
    """Ann's API token."""
    return make_user(client, "ann")


def cursor(raw: str) -> str:
    """A conversation cursor holding raw, encoded as the service encodes them."""
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("number", [HUGE, JUST_PAST, "0", "-1"])
@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("GET", "/v1/conversations/{n}"),
        ("GET", "/v1/conversations/{n}/messages"),
        ("POST", "/v1/conversations/{n}/members"),
        ("DELETE", "/v1/conversations/1/messages/{n}"),
        ("DELETE", "/v1/conversations/{n}/members/ann"),
    ],
)
def test_ids_past_64_bits_in_paths_are_404(
    client: Client, ann: str, method: str, template: str, number: str
) -> None:
    """A path id outside 1..2**63-1 is no route: 404 problem, never a 500."""
    start(client, ann, [])
    result = client.simulate_request(
        method, template.format(n=number), headers=bearer(ann), json={"handle": "ann"}
    )
    assert_problem(result, 404)


@pytest.mark.parametrize("number", [HUGE, JUST_PAST])
def test_token_id_past_64_bits_is_404(client: Client, number: str) -> None:
    """DELETE /v1/tokens/{id} with an id past 64 bits is 404, never a 500."""
    assert_problem(client.simulate_delete(f"/v1/tokens/{number}", headers=ADMIN), 404)


def test_largest_id_is_a_normal_404(client: Client, ann: str) -> None:
    """2**63-1 is a valid id: the answer is 'no conversation', from the database."""
    result = client.simulate_get(f"/v1/conversations/{2**63 - 1}", headers=bearer(ann))
    assert "no conversation" in assert_problem(result, 404)["detail"]


def test_message_ids_go_past_32_bits(
    client: Client, ann: str, target: DatabaseTarget
) -> None:
    """The message after id 2**31 - 1 is stored like any other: ids are 64-bit."""
    conversation = start(client, ann, [])
    if target.dialect == "postgres":
        execute(
            target,
            "SELECT setval(pg_get_serial_sequence('messages', 'id'), 2147483647)",
        )
    else:
        execute(
            target,
            "INSERT INTO messages (id, conversation_id, author_id, body, created_at) "
            "VALUES (2147483647, ?, 1, 'the last 32-bit id', '2026-01-01 00:00:00')",
            (conversation,),
        )
    assert post(client, ann, conversation, "past 32 bits")["id"] == 2**31


@pytest.mark.parametrize("parameter", ["before", "after"])
@pytest.mark.parametrize("number", [HUGE, JUST_PAST])
def test_message_cursors_past_64_bits_are_422(
    client: Client, ann: str, parameter: str, number: str
) -> None:
    """?before= and ?after= past 2**63-1 are 422 naming the parameter."""
    conversation = start(client, ann, [])
    result = client.simulate_get(
        f"/v1/conversations/{conversation}/messages",
        params={parameter: number},
        headers=bearer(ann),
    )
    problem = assert_problem(result, 422)
    assert problem["errors"][0]["parameter"] == parameter


@pytest.mark.parametrize(
    "raw",
    [
        f"2026-01-01 00:00:00|{HUGE}",
        f"2026-01-01 00:00:00|{JUST_PAST}",
        # Stamps at the edge of the date range whose offset moves them past it.
        "0001-01-01T00:00:00+01:00|1",
        "9999-12-31T23:59:59.999999-01:00|1",
    ],
)
def test_tampered_conversation_cursor_is_422(
    client: Client, ann: str, raw: str
) -> None:
    """A cursor with an id past 64 bits or a stamp past the date range is 422, not 500."""
    result = client.simulate_get(
        "/v1/conversations", params={"cursor": cursor(raw)}, headers=bearer(ann)
    )
    problem = assert_problem(result, 422)
    assert problem["errors"] == [{"detail": "malformed cursor", "parameter": "cursor"}]


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x02", "\x03", "\x0b", "\x1b"])
def test_control_characters_in_search_are_422(
    client: Client, ann: str, char: str
) -> None:
    """q with a C0 control character is 422 naming it; FTS5 never sees it."""
    result = client.simulate_get(
        "/v1/search", params={"q": f"lunch{char}x"}, headers=bearer(ann)
    )
    problem = assert_problem(result, 422)
    (error,) = problem["errors"]
    assert error["parameter"] == "q"
    assert f"U+{ord(char):04X}" in error["detail"]


def test_tab_and_newlines_in_search_separate_words(client: Client, ann: str) -> None:
    """Tab, line feed and carriage return in q are whitespace, as in a message."""
    conversation = start(client, ann, [])
    post(client, ann, conversation, "lunch on friday")
    result = client.simulate_get(
        "/v1/search", params={"q": "lunch\tfriday\r\n"}, headers=bearer(ann)
    )
    assert result.status_code == 200, result.text
    assert len(result.json["items"]) == 1


def test_search_refuses_more_than_16_words(client: Client, ann: str) -> None:
    """17 words in q are a 422 naming the limit; 16 are searched, all of them."""
    conversation = start(client, ann, [])
    words = [f"w{i}" for i in range(17)]
    post(client, ann, conversation, " ".join(words[:16]))
    sixteen = client.simulate_get(
        "/v1/search", params={"q": " ".join(words[:16])}, headers=bearer(ann)
    )
    assert sixteen.status_code == 200
    assert len(sixteen.json["items"]) == 1
    sixteenth_missing = client.simulate_get(
        "/v1/search",
        params={"q": " ".join([*words[:15], "absent"])},
        headers=bearer(ann),
    )
    assert sixteenth_missing.json["items"] == []  # the 16th word counts too
    seventeen = client.simulate_get(
        "/v1/search", params={"q": " ".join(words)}, headers=bearer(ann)
    )
    problem = assert_problem(seventeen, 422)
    assert "17 words" in problem["detail"]
    assert "at most 16" in problem["detail"]


def test_search_store_refuses_rather_than_drops_words(database: Database) -> None:
    """Below HTTP too: 17 words raise instead of searching the first 16."""
    with orm.db_session, pytest.raises(ValueError, match="17 search words"):
        database.search.messages(1, " ".join(f"w{i}" for i in range(17)), 10)


@pytest.mark.parametrize("char", ["\x00", "\x02", "\x03", "\x07", "\x1f"])
@pytest.mark.parametrize(
    ("path", "payload", "pointer"),
    [
        ("/v1/users", {"handle": "zed", "display_name": "Z{c}"}, "#/display_name"),
        ("/v1/conversations", {"title": "T{c}"}, "#/title"),
        ("messages", {"body": "a {c}mark{c} b"}, "#/body"),
    ],
)
def test_control_characters_in_text_are_422(
    client: Client,
    ann: str,
    char: str,
    path: str,
    payload: dict[str, str],
    pointer: str,
) -> None:
    """Bodies, titles and display names with C0 controls (snippet markers too) are 422."""
    conversation = start(client, ann, [])
    if path == "messages":
        path = f"/v1/conversations/{conversation}/messages"
    headers = ADMIN if path == "/v1/users" else bearer(ann)
    body = {k: v.replace("{c}", char) for k, v in payload.items()}
    result = client.simulate_post(path, json=body, headers=headers)
    problem = assert_problem(result, 422)
    (error,) = problem["errors"]
    assert error["pointer"] == pointer
    assert f"U+{ord(char):04X}" in error["detail"]


def test_tab_and_newlines_in_text_are_kept(client: Client, ann: str) -> None:
    """Tab, line feed and carriage return stay allowed in a message body."""
    conversation = start(client, ann, [])
    assert post(client, ann, conversation, "a\tb\r\nc\n")["body"] == "a\tb\r\nc\n"


def test_message_cannot_inject_marks_into_snippets(client: Client, ann: str) -> None:
    """The snippet markers cannot be posted, so search results mark only matches."""
    conversation = start(client, ann, [])
    refused = client.simulate_post(
        f"/v1/conversations/{conversation}/messages",
        json={"body": "lunch \x02evil\x03"},
        headers=bearer(ann),
    )
    assert_problem(refused, 422)
    post(client, ann, conversation, "lunch <mark>x</mark>")
    result = client.simulate_get(
        "/v1/search", params={"q": "lunch"}, headers=bearer(ann)
    )
    (hit,) = result.json["items"]
    assert hit["snippet"] == "<mark>lunch</mark> &lt;mark&gt;x&lt;/mark&gt;"


@pytest.mark.parametrize("key", ["k%0A", "k%0D%0A", "k%0Ak"])
def test_metadata_key_with_a_newline_is_422(client: Client, key: str) -> None:
    """A key ending in (or holding) a newline is refused on every metadata method."""
    for result in (
        client.simulate_get(f"/v1/metadata/{key}", headers=ADMIN),
        client.simulate_put(f"/v1/metadata/{key}", json={"value": "v"}, headers=ADMIN),
        client.simulate_delete(f"/v1/metadata/{key}", headers=ADMIN),
    ):
        assert_problem(result, 422)
    listed = client.simulate_get("/v1/metadata", params={"after": "k\n"}, headers=ADMIN)
    assert assert_problem(listed, 422)["errors"][0]["parameter"] == "after"


def test_handle_with_a_trailing_newline_is_422(client: Client, ann: str) -> None:
    """A handle with a trailing newline is refused for new users and new members."""
    created = client.simulate_post(
        "/v1/users", json={"handle": "zed\n", "display_name": "X"}, headers=ADMIN
    )
    assert_problem(created, 422)
    conversation = start(client, ann, [])
    added = client.simulate_post(
        f"/v1/conversations/{conversation}/members",
        json={"handle": "ann\n"},
        headers=bearer(ann),
    )
    assert_problem(added, 422)
