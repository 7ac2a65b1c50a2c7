"""HTTP methods and status lines: HEAD and OPTIONS on every route, RFC 9110 phrases."""

from __future__ import annotations

import falcon.testing
import pytest

from db.database import Database
from db.target import DatabaseTarget
from service.app import create_app
from tests.engines import settings_for
from tests.messaging_helpers import ADMIN, ADMIN_TOKEN, bearer, make_user, post, start
from tests.test_api import assert_problem

Client = falcon.testing.TestClient


@pytest.fixture
def client(target: DatabaseTarget, database: Database) -> Client:
    """A client for an app with SERVICE_ADMIN_TOKEN set."""
    settings = settings_for(target, admin_token=ADMIN_TOKEN)
    return falcon.testing.TestClient(create_app(settings, database=database))


def get_routes(client: Client) -> list[tuple[str, dict[str, str]]]:
    """A concrete path and its headers for every GET route, with data behind it."""
    ann = make_user(client, "ann")
    conversation = start(client, ann, [])
    post(client, ann, conversation, "lunch")
    client.simulate_put("/v1/metadata/k", json={"value": "v"}, headers=ADMIN)
    user = bearer(ann)
    return [
        ("/healthz", {}),
        ("/readyz", {}),
        ("/metrics", {}),
        ("/openapi.json", {}),
        ("/docs", {}),
        ("/docs/redoc.standalone.js", {}),
        ("/v1/metadata", ADMIN),
        ("/v1/metadata/k", ADMIN),
        ("/v1/me", user),
        ("/v1/users/ann", ADMIN),
        ("/v1/conversations", user),
        (f"/v1/conversations/{conversation}", user),
        (f"/v1/conversations/{conversation}/messages", user),
        ("/v1/search?q=lunch", user),
    ]


def test_every_get_route_answers_head_like_get(client: Client) -> None:
    """HEAD is GET's status and headers, Content-Length included, with no body."""
    routes = get_routes(client)
    documented = client.simulate_get("/openapi.json").json["paths"]
    get_templates = {path for path, ops in documented.items() if "get" in ops}
    # The event stream's GET never ends (tests/test_events.py); its HEAD is the head.
    get_templates.discard("/v1/events")
    stream = client.simulate_head("/v1/events", headers=routes[8][1])
    assert stream.status_code == 200, stream.text
    assert stream.headers["content-type"] == "text/event-stream"
    assert stream.content == b""
    assert len(routes) == len(get_templates), "a GET route is missing here"
    for path, headers in routes:
        got = client.simulate_get(path, headers=headers)
        head = client.simulate_head(path, headers=headers)
        assert got.status_code == 200, (path, got.text)
        assert head.status_code == 200, (path, head.text)
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path
        if path != "/metrics":  # its body changes between the two requests
            assert head.headers["content-length"] == str(len(got.content)), path


def test_head_of_a_missing_resource_is_404_without_body(client: Client) -> None:
    """HEAD answers what GET would: 404 for a missing key, no body."""
    result = client.simulate_head("/v1/metadata/absent", headers=ADMIN)
    assert result.status_code == 404
    assert result.content == b""


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/healthz", {"GET", "HEAD", "OPTIONS"}),
        ("/v1/metadata", {"GET", "HEAD", "OPTIONS"}),
        ("/v1/metadata/k", {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}),
        ("/v1/users", {"POST", "OPTIONS"}),
        ("/v1/tokens/1", {"DELETE", "OPTIONS"}),
        ("/v1/conversations/1/members", {"POST", "OPTIONS"}),
        ("/v1/conversations/1/messages", {"GET", "HEAD", "POST", "OPTIONS"}),
    ],
)
def test_options_and_405_list_every_allowed_method(
    client: Client, path: str, allowed: set[str]
) -> None:
    """OPTIONS' Allow and a 405's Allow both list OPTIONS, and HEAD where GET is."""
    options = client.simulate_options(path)
    assert options.status_code == 200
    assert set(options.headers["allow"].split(", ")) == allowed
    refused = client.simulate_request("PATCH", path)
    assert_problem(refused, 405)
    assert set(refused.headers["allow"].split(", ")) == allowed


@pytest.mark.parametrize(
    ("status", "phrase"),
    [(413, "Content Too Large"), (422, "Unprocessable Content")],
)
def test_titles_and_status_lines_use_rfc_9110_phrases(
    client: Client, status: int, phrase: str
) -> None:
    """413 and 422 say RFC 9110's phrase in both the title and the status line."""
    if status == 413:
        result = client.simulate_put(
            "/v1/metadata/k", json={"value": "x" * 300_000}, headers=ADMIN
        )
    else:
        result = client.simulate_put("/v1/metadata/k", json={"value": 5}, headers=ADMIN)
    problem = assert_problem(result, status)
    assert problem["title"] == phrase
    assert result.status == f"{status} {phrase}"


def test_falcons_own_errors_use_the_same_phrases(client: Client) -> None:
    """Errors Falcon raises itself (404, 405) carry matching titles and lines."""
    for result, status in (
        (client.simulate_get("/nope"), 404),
        (client.simulate_request("PATCH", "/healthz"), 405),
    ):
        problem = assert_problem(result, status)
        assert result.status == f"{status} {problem['title']}"
