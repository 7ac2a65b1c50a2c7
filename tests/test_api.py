"""The HTTP contract of the metadata API, health probes and OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

import falcon.testing
import pytest

from db.target import DatabaseTarget
from service.resources.metadata import MAX_VALUE_BYTES
from tests.engines import execute, rows
from tests.helpers import LATEST, SHIPPED

Client = falcon.testing.TestClient


def put(client: Client, key: str, value: Any, **kwargs: Any) -> falcon.testing.Result:
    """PUT a JSON body {"value": value}."""
    return client.simulate_put(f"/v1/metadata/{key}", json={"value": value}, **kwargs)


def stored(target: DatabaseTarget) -> list[tuple[str, str]]:
    """Every (key, value) in the database, read on a connection of its own."""
    return rows(target, "SELECT key, value FROM app_metadata ORDER BY key")  # type: ignore[return-value]


def assert_problem(result: falcon.testing.Result, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with the given status."""
    assert result.status_code == status, result.text
    assert result.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = result.json
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    assert body["request_id"] == result.headers["x-request-id"]
    assert "Traceback" not in result.text
    return body


def test_healthz_answers_without_database(client: Client) -> None:
    """GET /healthz is 200 {"status": "ok"}."""
    result = client.simulate_get("/healthz")
    assert result.status_code == 200
    assert result.json == {"status": "ok"}


def test_readyz_reports_schema_version(client: Client) -> None:
    """GET /readyz is 200 with the schema version and nothing pending."""
    result = client.simulate_get("/readyz")
    assert result.status_code == 200
    assert result.json == {
        "status": "ready",
        "schema_version": LATEST,
        "pending": [],
        "edited": [],
    }


def test_readyz_is_503_when_history_is_behind(
    client: Client, target: DatabaseTarget
) -> None:
    """/readyz turns 503 when a shipped migration is not recorded as applied."""
    execute(target, "DELETE FROM schema_migrations")
    result = client.simulate_get("/readyz")
    assert result.status_code == 503
    assert result.json["pending"] == SHIPPED
    assert result.headers["retry-after"]


def test_put_creates_then_updates(client: Client, target: DatabaseTarget) -> None:
    """PUT answers 201 when it creates and 200 when it replaces; GET reads it back."""
    created = put(client, "app.name", "demo")
    assert created.status_code == 201
    assert created.json["key"] == "app.name"
    assert created.json["updated_at"].endswith("Z")
    updated = put(client, "app.name", "demo 2")
    assert updated.status_code == 200
    assert updated.json["updated_at"] >= created.json["updated_at"]
    got = client.simulate_get("/v1/metadata/app.name")
    assert got.json == updated.json
    assert stored(target) == [("app.name", "demo 2")]


def test_values_are_kept_exactly(client: Client) -> None:
    """Whitespace, control characters, quotes and non-ASCII text round-trip unchanged."""
    for value in [
        "  padded  ",
        "",
        "bell\u0007 and escape\u001b inside",
        "'; DROP TABLE app_metadata; --",
        "日本語 ✓ 🚀",
    ]:
        assert put(client, "k", value).status_code in (200, 201)
        assert client.simulate_get("/v1/metadata/k").json["value"] == value


def test_nul_in_a_value_is_422_and_nothing_stored(
    client: Client, target: DatabaseTarget
) -> None:
    """U+0000 is refused on every engine (PostgreSQL's text cannot hold it): 422, no row."""
    body = assert_problem(put(client, "k", "nul\u0000inside"), 422)
    assert body["errors"][0]["pointer"] == "#/value"
    assert "U+0000" in body["errors"][0]["detail"]
    assert stored(target) == []


def test_delete_then_404(client: Client, target: DatabaseTarget) -> None:
    """DELETE answers 204, then the key is gone (404) and a second DELETE is 404."""
    put(client, "gone", "x")
    assert client.simulate_delete("/v1/metadata/gone").status_code == 204
    assert_problem(client.simulate_get("/v1/metadata/gone"), 404)
    assert_problem(client.simulate_delete("/v1/metadata/gone"), 404)
    assert stored(target) == []


def test_list_pages_by_key_with_cursor(client: Client) -> None:
    """Listing walks every key once, in order, following the next cursor."""
    keys = [f"k{i:03d}" for i in range(25)]
    for key in reversed(keys):
        put(client, key, key.upper())
    seen: list[str] = []
    after = None
    while True:
        query = "limit=10" + (f"&after={after}" if after else "")
        page = client.simulate_get("/v1/metadata", query_string=query).json
        seen.extend(item["key"] for item in page["items"])
        after = page["next"]
        if after is None:
            break
    assert seen == keys


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "limit=ten", "after=bad%20key"],
)
def test_list_rejects_bad_parameters(client: Client, query: str) -> None:
    """Out-of-range or malformed list parameters are 422 naming the parameter."""
    body = assert_problem(client.simulate_get("/v1/metadata", query_string=query), 422)
    assert body["errors"][0]["parameter"] in ("limit", "after")


@pytest.mark.parametrize(
    "key", ["a%20b", "x" * 129, "%C3%A9", "a%00b", "..", "semi;colon"]
)
def test_invalid_keys_are_422_and_nothing_stored(
    client: Client, target: DatabaseTarget, key: str
) -> None:
    """Keys outside 1-128 of [A-Za-z0-9._:-] are refused for every method."""
    assert_problem(put(client, key, "v"), 422)
    assert_problem(client.simulate_get(f"/v1/metadata/{key}"), 422)
    assert_problem(client.simulate_delete(f"/v1/metadata/{key}"), 422)
    assert stored(target) == []


def test_key_with_slash_is_not_a_route(client: Client) -> None:
    """A key containing '/' does not match the route: 404 problem."""
    assert_problem(put(client, "a/b", "v"), 404)


def test_malformed_json_is_400(client: Client, target: DatabaseTarget) -> None:
    """A body that is not JSON is 400 with a detail."""
    result = client.simulate_put(
        "/v1/metadata/k", body="{not json", headers={"Content-Type": "application/json"}
    )
    body = assert_problem(result, 400)
    assert "not valid JSON" in body["detail"]
    assert stored(target) == []


@pytest.mark.parametrize(
    "payload",
    [{"value": 5}, {"value": None}, {}, {"value": "x", "extra": 1}, ["value"], "text"],
    ids=["int", "null", "missing", "unknown-field", "array", "string"],
)
def test_wrong_shapes_are_422(
    client: Client, target: DatabaseTarget, payload: Any
) -> None:
    """Wrong types, missing or unknown fields are 422 with a JSON pointer."""
    body = assert_problem(client.simulate_put("/v1/metadata/k", json=payload), 422)
    assert body["errors"][0]["pointer"].startswith("#/")
    assert stored(target) == []


def test_wrong_content_type_is_415(client: Client) -> None:
    """A body sent as text/plain is 415."""
    result = client.simulate_put(
        "/v1/metadata/k", body='{"value": "x"}', headers={"Content-Type": "text/plain"}
    )
    assert_problem(result, 415)


def test_empty_body_is_400(client: Client) -> None:
    """An empty JSON body is 400."""
    result = client.simulate_put(
        "/v1/metadata/k", body="", headers={"Content-Type": "application/json"}
    )
    assert_problem(result, 400)


def test_value_limit_is_64_kib(client: Client, target: DatabaseTarget) -> None:
    """A value of exactly 64 KiB is stored; one byte more is 413 and nothing is stored."""
    assert put(client, "big", "x" * MAX_VALUE_BYTES).status_code == 201
    assert_problem(put(client, "bigger", "x" * (MAX_VALUE_BYTES + 1)), 413)
    assert_problem(put(client, "multibyte", "é" * (MAX_VALUE_BYTES // 2 + 1)), 413)
    assert [key for key, _ in stored(target)] == ["big"]


def test_oversized_body_is_413(client: Client) -> None:
    """A body over the configured limit is 413 before it is parsed."""
    body = json.dumps({"value": "x" * 300_000})
    result = client.simulate_put(
        "/v1/metadata/k", body=body, headers={"Content-Type": "application/json"}
    )
    assert_problem(result, 413)


def test_lone_surrogate_is_422(client: Client, target: DatabaseTarget) -> None:
    """A JSON string holding a lone surrogate cannot be stored: 422, not 500."""
    result = client.simulate_put(
        "/v1/metadata/k",
        body='{"value": "\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert result.status_code in (400, 422)
    assert result.headers["content-type"] == "application/problem+json"
    assert stored(target) == []


def test_wrong_method_is_405_with_allow(client: Client) -> None:
    """An unsupported method is 405 problem+json with an Allow header."""
    result = client.simulate_post("/v1/metadata/k")
    assert_problem(result, 405)
    assert set(result.headers["allow"].replace(" ", "").split(",")) >= {
        "GET",
        "PUT",
        "DELETE",
    }


def test_unknown_route_is_404_problem(client: Client) -> None:
    """An unknown path is a 404 problem."""
    assert_problem(client.simulate_get("/nope"), 404)


def test_request_id_is_kept_or_made(client: Client) -> None:
    """A sane incoming X-Request-ID is echoed; an unsafe one is replaced."""
    kept = client.simulate_get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"
    replaced = client.simulate_get(
        "/healthz", headers={"X-Request-ID": "bad id\twith spaces"}
    )
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"
    assert len(replaced.headers["x-request-id"]) == 32


def test_openapi_document_describes_every_route(client: Client) -> None:
    """/openapi.json is an OpenAPI 3 document covering every route and method."""
    document = client.simulate_get("/openapi.json").json
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert set(paths) >= {"/healthz", "/readyz", "/v1/metadata", "/v1/metadata/{key}"}
    assert set(paths["/v1/metadata/{key}"]) == {"get", "put", "delete"}
    put_op = paths["/v1/metadata/{key}"]["put"]
    assert put_op["requestBody"]["content"]["application/json"]["schema"][
        "$ref"
    ].endswith("MetadataIn")
    assert "application/problem+json" in put_op["responses"]["422"]["content"]
    (key_param,) = put_op["parameters"]
    assert "[A-Za-z0-9._:-]{1,128}" in key_param["schema"]["pattern"]


def test_metrics_count_requests_by_route(
    client: Client, target: DatabaseTarget
) -> None:
    """/metrics exposes request counts by route template, method and status, and the schema version.

    The write-lock histogram counts waits for this process's write gate:
    one PUT on SQLite; none on PostgreSQL, which has no gate (row locks).
    """
    put(client, "m1", "v")
    client.simulate_get("/v1/metadata/absent")
    text = client.simulate_get("/metrics").text
    assert (
        'service_http_requests_total{method="PUT",route="/v1/metadata/{key}",status="201"} 1.0'
        in text
    )
    assert (
        'service_http_requests_total{method="GET",route="/v1/metadata/{key}",status="404"} 1.0'
        in text
    )
    assert "service_http_request_duration_seconds_bucket" in text
    assert f"service_schema_version {LATEST}.0" in text
    gate_waits = 1 if target.dialect == "sqlite" else 0
    assert f"service_db_write_lock_wait_seconds_count {gate_waits}.0" in text
