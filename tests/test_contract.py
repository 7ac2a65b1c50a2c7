"""The OpenAPI document is the whole contract, and the server keeps it."""

from __future__ import annotations

import re
from typing import Any

import falcon
import falcon.testing
import pytest
from spectree import Response

from db.database import Database
from db.target import DatabaseTarget
from service import resources
from service.app import create_app, routes_for
from service.auth import Authenticator
from service.metrics import Metrics
from service.openapi import build_document, documented
from tests.engines import settings_for
from tests.messaging_helpers import ADMIN, ADMIN_TOKEN, bearer, make_user, start

Client = falcon.testing.TestClient


@pytest.fixture
def admin_client(target: DatabaseTarget, database: Database) -> Client:
    """A client for an app with SERVICE_ADMIN_TOKEN set."""
    settings = settings_for(target, admin_token=ADMIN_TOKEN)
    return falcon.testing.TestClient(create_app(settings, database=database))


@pytest.fixture
def document(admin_client: Client) -> dict[str, Any]:
    """The served document."""
    found: dict[str, Any] = admin_client.simulate_get("/openapi.json").json
    return found


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) for every operation."""
    return [
        (path, method, operation)
        for path, ops in document["paths"].items()
        for method, operation in ops.items()
    ]


@pytest.mark.engines("sqlite")
def test_the_document_names_its_server_and_each_model_once(
    document: dict[str, Any],
) -> None:
    """A server, and one component per model (no "ConversationOut.MemberOut")."""
    assert document["servers"] == [
        {"url": "/", "description": "This server (relative to the document)"}
    ]
    names = list(document["components"]["schemas"])
    assert all(re.fullmatch(r"[A-Za-z0-9]+", name) for name in names), names
    assert "MemberOut" in names


@pytest.mark.engines("sqlite")
def test_operation_ids_are_unique_identifiers(document: dict[str, Any]) -> None:
    """Every operationId is a snake_case identifier, stable and unique."""
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids), ids
    assert "conversations_get_item" in ids


@pytest.mark.engines("sqlite")
def test_every_answer_documents_the_headers_sent(document: dict[str, Any]) -> None:
    """X-Request-ID always; WWW-Authenticate on 401, Retry-After on 503, Location on 201."""
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            headers = response.get("headers", {})
            where = f"{method} {path} {status}"
            assert "X-Request-ID" in headers, where
            if status == "401":
                assert "WWW-Authenticate" in headers, where
            if status in ("503", "507"):
                assert "Retry-After" in headers, where
            if status == "201":
                assert "Location" in headers, where
    defined = document["components"]["headers"]
    assert all(header["required"] for header in defined.values())
    assert set(defined) == {
        "X-Request-ID",
        "WWW-Authenticate",
        "Retry-After",
        "Location",
        "ETag",
    }


@pytest.mark.engines("sqlite")
def test_every_body_has_an_example(document: dict[str, Any]) -> None:
    """Each request and response body of every operation carries an example."""
    missing = []
    for path, method, operation in operations(document):
        bodies = [("request", operation.get("requestBody", {}))]
        bodies += list(operation["responses"].items())
        for status, body in bodies:
            for media_type, media in body.get("content", {}).items():
                if "schema" in media and "example" not in media:
                    missing.append(f"{method} {path} {status} {media_type}")
    assert missing == []
    post = document["paths"]["/v1/conversations"]["post"]
    example = post["requestBody"]["content"]["application/json"]["example"]
    assert example == {"title": "Plans", "members": ["bob"]}


@pytest.mark.engines("sqlite")
def test_rules_the_server_enforces_are_in_the_schemas(document: dict[str, Any]) -> None:
    """Control characters, U+0000, cursors, and before/after are stated."""
    schemas = document["components"]["schemas"]
    body = schemas["MessageIn"]["properties"]["body"]
    assert re.search(r"\\u0000-\\u0008", body["pattern"])
    value = schemas["MetadataIn"]["properties"]["value"]
    assert value["pattern"] == "^[^\\u0000]*$"
    messages = document["paths"]["/v1/conversations/{conversation_id}/messages"]
    parameters = {p["name"]: p for p in messages["get"]["parameters"]}
    assert "Not with after" in parameters["before"]["description"]
    listing = document["paths"]["/v1/conversations"]["get"]["parameters"]
    cursor = next(p for p in listing if p["name"] == "cursor")
    assert "Opaque" in cursor["description"]


@pytest.mark.engines("sqlite")
def test_a_201_links_to_what_the_new_resource_offers(document: dict[str, Any]) -> None:
    """Links from each creation carry the new id to the item's operations."""
    created = document["paths"]["/v1/conversations"]["post"]["responses"]["201"]
    link = created["links"]["conversations_get_item"]
    assert link["parameters"] == {"conversation_id": "$response.body#/id"}
    member = document["paths"]["/v1/conversations/{conversation_id}/members"]["post"]
    remove = member["responses"]["201"]["links"]["members_delete_item"]
    assert remove["parameters"] == {
        "conversation_id": "$request.path.conversation_id",
        "handle": "$response.body#/handle",
    }


def test_every_201_carries_location(admin_client: Client) -> None:
    """The server sends Location with each creation, and it can be fetched or acted on."""
    created = admin_client.simulate_post(
        "/v1/users", json={"handle": "ann", "display_name": "Ann"}, headers=ADMIN
    )
    assert created.headers["location"] == "/v1/users/ann"
    assert (
        admin_client.simulate_get("/v1/users/ann", headers=ADMIN).json == created.json
    )
    token = admin_client.simulate_post("/v1/users/ann/tokens", headers=ADMIN)
    assert token.headers["location"] == f"/v1/tokens/{token.json['id']}"
    ann = bearer(token.json["token"])
    make_user(admin_client, "bob")
    talk = admin_client.simulate_post(
        "/v1/conversations", json={"title": "t"}, headers=ann
    )
    where = talk.headers["location"]
    assert where == f"/v1/conversations/{talk.json['id']}"
    assert admin_client.simulate_get(where, headers=ann).json == talk.json
    joined = admin_client.simulate_post(
        f"{where}/members", json={"handle": "bob"}, headers=ann
    )
    assert joined.headers["location"] == f"{where}/members/bob"
    again = admin_client.simulate_post(
        f"{where}/members", json={"handle": "bob"}, headers=ann
    )
    assert again.status_code == 200
    assert "location" not in again.headers
    said = admin_client.simulate_post(
        f"{where}/messages", json={"body": "hi"}, headers=ann
    )
    assert said.headers["location"] == f"{where}/messages/{said.json['id']}"
    put = admin_client.simulate_put(
        "/v1/metadata/a.b", json={"value": "v"}, headers=ADMIN
    )
    assert put.headers["location"] == "/v1/metadata/a.b"


def test_single_resource_gets_answer_304_when_unchanged(admin_client: Client) -> None:
    """ETag on each single-resource GET; If-None-Match gives 304 until it changes."""
    token = make_user(admin_client, "ann")
    conversation = start(admin_client, token, [])
    admin_client.simulate_put("/v1/metadata/k", json={"value": "v1"}, headers=ADMIN)
    for path, headers in [
        ("/v1/metadata/k", ADMIN),
        ("/v1/me", bearer(token)),
        ("/v1/users/ann", ADMIN),
        (f"/v1/conversations/{conversation}", bearer(token)),
    ]:
        first = admin_client.simulate_get(path, headers=headers)
        tag = first.headers["etag"]
        assert re.fullmatch(r'"[0-9a-f]{32}"', tag), path
        same = admin_client.simulate_get(
            path, headers={**headers, "If-None-Match": tag}
        )
        assert (same.status_code, same.content) == (304, b""), path
        assert same.headers["etag"] == tag
        weak = admin_client.simulate_get(
            path, headers={**headers, "If-None-Match": f'"other", W/{tag}'}
        )
        assert weak.status_code == 304, path
        other = admin_client.simulate_get(
            path, headers={**headers, "If-None-Match": '"other"'}
        )
        assert other.status_code == 200
        assert other.json == first.json
    old = admin_client.simulate_get("/v1/metadata/k", headers=ADMIN).headers["etag"]
    admin_client.simulate_put("/v1/metadata/k", json={"value": "v2"}, headers=ADMIN)
    changed = admin_client.simulate_get(
        "/v1/metadata/k", headers={**ADMIN, "If-None-Match": old}
    )
    assert changed.status_code == 200
    assert changed.json["value"] == "v2"
    assert changed.headers["etag"] != old


class Labels:
    """A new resource with a tag nothing else uses."""

    @documented(tags=["labels"], resp=Response("HTTP_204"))
    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Nothing."""


@pytest.mark.engines("sqlite")
def test_a_new_tag_needs_no_registration(
    target: DatabaseTarget, database: Database
) -> None:
    """A resource's new tag is described from its module's docstring, not a table."""
    settings = settings_for(target, admin_token=ADMIN_TOKEN)
    auth = Authenticator(database.users, database.token_uses, None)
    routes = routes_for(resources.Context(settings, database, auth), Metrics())
    document = build_document([*routes, ("/v1/labels", Labels(), None)])
    tags = {t["name"]: t.get("description") for t in document["tags"]}
    assert tags["labels"] == __doc__.splitlines()[0]
    assert tags["conversations"] == "A user's conversations and their members"
