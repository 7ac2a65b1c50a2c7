"""/openapi.json documents every route, its statuses and who may call it."""

from __future__ import annotations

import re

import falcon.testing
import pytest

from db.database import Database
from service import resources
from service.app import METHODS, routes_for
from service.auth import Authenticator
from service.config import Settings
from service.metrics import Metrics
from service.openapi import build_document


def responders(
    routes: list[tuple[str, object, str | None]],
) -> set[tuple[str, str]]:
    """(path as the document writes it, METHOD) for every responder Falcon routes to."""
    found = set()
    for template, resource, suffix in routes:
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", template)
        for method in METHODS:
            name = f"on_{method.lower()}" + (f"_{suffix}" if suffix else "")
            if method not in ("HEAD", "OPTIONS") and hasattr(resource, name):
                found.add((path, method))
    return found


@pytest.fixture
def routes(
    settings: Settings, database: Database
) -> list[tuple[str, object, str | None]]:
    """The app's full route table."""
    auth = Authenticator(database.users, database.token_uses, None)
    return routes_for(resources.Context(settings, database, auth), Metrics())


def test_every_routed_responder_is_in_the_document(
    routes: list[tuple[str, object, str | None]],
) -> None:
    """A responder missing from /openapi.json would escape the fuzz test: none is."""
    document = build_document(routes)
    documented = {
        (path, method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert responders(routes) - documented == set()
    assert {("/metrics", "GET"), ("/openapi.json", "GET")} <= documented


def test_an_undocumented_responder_is_caught(
    routes: list[tuple[str, object, str | None]],
) -> None:
    """The check above notices a route whose responder lacks @documented."""

    class Undocumented:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            resp.media = {}

    with_extra = [*routes, ("/v1/undocumented", Undocumented(), None)]
    document = build_document(with_extra)
    assert "/v1/undocumented" not in document["paths"]
    assert ("/v1/undocumented", "GET") in responders(with_extra)


def test_security_and_derived_statuses(client: falcon.testing.TestClient) -> None:
    """Bearer security where a token is needed; problem statuses follow from each route."""
    document = client.simulate_get("/openapi.json").json
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    paths = document["paths"]
    assert paths["/v1/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/v1/users"]["post"]["security"] == [{"bearerAuth": []}]
    # Operator data: the token is needed only when SERVICE_ADMIN_TOKEN is set.
    assert paths["/v1/metadata/{key}"]["put"]["security"] == [{"bearerAuth": []}, {}]
    assert "security" not in paths["/healthz"]["get"]
    post_user = paths["/v1/users"]["post"]["responses"]
    assert {"400", "401", "404", "409", "413", "415", "422", "503", "507"} <= set(
        post_user
    )
    problem = post_user["415"]["content"]["application/problem+json"]["schema"]
    assert problem["$ref"].endswith("/ProblemOut")
    assert (
        "507" not in paths["/v1/search"]["get"]["responses"]
    )  # reads never fill a disk
    assert "401" not in paths["/readyz"]["get"]["responses"]
