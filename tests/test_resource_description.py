"""One description per resource: models render records, statuses and path types derive."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Any, ClassVar

import falcon
import falcon.testing
import pytest
from pydantic import BaseModel
from spectree import Response

from db.database import Database
from db.domain.records import MessageRecord
from db.target import DatabaseTarget
from service import resources
from service.app import create_app, routes_for
from service.auth import Authenticator
from service.metrics import Metrics
from service.openapi import derived_statuses, documented
from service.paths import guard
from service.rendering import body, renderer
from service.resources.messages import MessageOut
from service.schemas import ProblemOut
from tests.engines import settings_for
from tests.messaging_helpers import ADMIN, ADMIN_TOKEN


def all_routes(target: DatabaseTarget, database: Database) -> list[Any]:
    """The app's route table."""
    settings = settings_for(target, admin_token=ADMIN_TOKEN)
    auth = Authenticator(database.users, database.token_uses, None)
    return routes_for(resources.Context(settings, database, auth), Metrics())


def test_a_model_renders_its_record_as_the_api_shows_it() -> None:
    """The response model turns the record into JSON: fields by name, UTC timestamps."""
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    record = MessageRecord(7, 1, "ann", "hi", moment)
    assert body(MessageOut, record) == (
        b'{"id":7,"conversation_id":1,"author":"ann","body":"hi",'
        b'"created_at":"2026-01-02T03:04:05.000000Z"}'
    )


def test_a_record_drifting_from_its_model_is_refused_at_once() -> None:
    """A field the record lacks, or a type the model does not take, is a TypeError."""

    class Missing(BaseModel):
        __record__: ClassVar[type] = MessageRecord
        id: int
        title: str

    class Retyped(BaseModel):
        __record__: ClassVar[type] = MessageRecord
        id: str

    class Nullable(BaseModel):
        __record__: ClassVar[type] = MessageRecord
        id: int | None
        created_at: datetime | None

    with pytest.raises(TypeError, match="has no field 'title'"):
        renderer(Missing)
    with pytest.raises(TypeError, match=r"Retyped\.id"):
        renderer(Retyped)
    assert (
        renderer(Nullable)(MessageRecord(1, 1, "a", "b", datetime.now(UTC)))["id"] == 1
    )


def test_every_resource_model_compiles_against_its_record() -> None:
    """create_app compiles every model of the resource modules; each shows a record."""
    models = resources.models()
    assert {m.__name__ for m in models} >= {"MessageOut", "ConversationOut", "UserOut"}
    for model in models:
        renderer(model)


def test_declared_statuses_are_only_those_that_cannot_be_derived(
    target: DatabaseTarget, database: Database
) -> None:
    """@documented names an error status only when the route's nature does not imply it."""
    redundant = []
    for template, resource, _ in all_routes(target, database):
        cls = type(resource)
        for name in dir(cls):
            func = getattr(cls, name)
            options = getattr(func, "__openapi__", None)
            if options is None or options.get("resp") is None:
                continue
            method = name[3:].split("_", 1)[0].upper()
            derived = derived_statuses(
                method,
                template,
                options,
                func.__auth__,
                getattr(resource, "uses_database", True),
                func.__etag__,
            )
            models = vars(options["resp"])["_raw_code_models"]
            # A status declared for its own model (readiness' 503) says more.
            problems = [c for c, m in models.items() if m is ProblemOut]
            declared = {
                int(code.removeprefix("HTTP_"))
                for code in [*options["resp"].codes, *problems]
            }
            redundant += [f"{cls.__name__}.{name} {s}" for s in declared & derived]
    assert redundant == []


def test_no_resource_is_handed_the_body_limit(
    target: DatabaseTarget, database: Database
) -> None:
    """The request body limit comes from the settings, not through constructors."""
    for _, resource, _ in all_routes(target, database):
        parameters = inspect.signature(type(resource).__init__).parameters
        assert not any("max_body" in p for p in parameters), type(resource)


def test_the_body_limit_is_the_settings(
    target: DatabaseTarget, database: Database
) -> None:
    """SERVICE_MAX_BODY_BYTES bounds every JSON body: 413 above it."""
    settings = settings_for(target, admin_token=ADMIN_TOKEN, max_body_bytes=2048)
    client = falcon.testing.TestClient(create_app(settings, database=database))
    big = client.simulate_put(
        "/v1/metadata/k", json={"value": "x" * 3000}, headers=ADMIN
    )
    assert big.status_code == 413
    assert "limit is 2048" in big.json["detail"]


def test_models_live_in_the_module_of_their_resource(
    target: DatabaseTarget, database: Database
) -> None:
    """A responder's request and response models are defined in its own module.

    service/schemas.py holds only what several resource modules share.
    """
    users: dict[type[BaseModel], set[str]] = {}
    for _, resource, _ in all_routes(target, database):
        cls = type(resource)
        for name in dir(cls):
            options = getattr(getattr(cls, name), "__openapi__", None) or {}
            models = [options.get(k) for k in ("json", "query")]
            if options.get("resp") is not None:
                models += list(vars(options["resp"])["_raw_code_models"].values())
            for model in filter(None, models):
                users.setdefault(model, set()).add(cls.__module__)
    misplaced = [
        f"{model.__module__}.{model.__name__} used by {sorted(modules)}"
        for model, modules in users.items()
        if modules != {model.__module__}
        and model is not ProblemOut  # every route's error shape
        and not (model.__module__ == "service.schemas" and len(modules) > 1)
    ]
    assert misplaced == []


class Tags:
    """A resource with a text path parameter left plain str."""

    @documented(tags=["t"], resp=Response("HTTP_204"))
    def on_delete_item(
        self, req: falcon.Request, resp: falcon.Response, name: str
    ) -> None:
        """Nothing."""


def test_a_text_path_parameter_without_a_type_stops_the_app() -> None:
    """A new path parameter name needs no registration, but it needs a pattern."""
    with pytest.raises(TypeError, match="annotate the path parameter 'name'"):
        guard(Tags(), "item", "/v1/tags/{name}")


def test_path_parameter_patterns_come_from_the_responders(
    client: falcon.testing.TestClient,
) -> None:
    """{handle} and {key} are documented with their types' patterns."""
    paths = client.simulate_get("/openapi.json").json["paths"]
    member = paths["/v1/conversations/{conversation_id}/members/{handle}"]["delete"]
    handle = next(p for p in member["parameters"] if p["name"] == "handle")
    assert handle["schema"]["pattern"] == "^[a-z0-9_]{3,32}$"
    key = paths["/v1/metadata/{key}"]["get"]["parameters"][0]
    assert key["schema"]["pattern"].startswith("^(?!")
    tokens = paths["/v1/users/{handle}/tokens"]["post"]
    assert "422" in tokens["responses"]  # a malformed handle


@pytest.mark.parametrize("raw", ["/v1/metadata/a\xffb", "/v1/metadata/\xc3"])
def test_a_path_that_is_not_utf8_is_400_and_nothing_stored(
    client: falcon.testing.TestClient, raw: str
) -> None:
    """%FF in a path is refused, not decoded into U+FFFD and routed (WSGI: latin-1)."""
    result = client.simulate_put(
        "/v1/metadata/x", extras={"PATH_INFO": raw}, json={"value": "v"}
    )
    assert result.status_code == 400
    assert "UTF-8" in result.json["detail"]
    assert result.headers["content-type"] == "application/problem+json"
    listed = client.simulate_get("/v1/metadata").json
    assert listed["items"] == []
