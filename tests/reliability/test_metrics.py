"""GET /metrics over HTTP: request counts, latency histogram, schema version."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import service_env
from tests.reliability.support import SHIPPED, Client, metric, metric_samples, serving

pytestmark = pytest.mark.slow


@pytest.mark.timeout(60)
def test_metrics_count_requests_time_them_and_show_the_schema(tmp_path: Path) -> None:
    """After a 404 and a PUT, /metrics has their counters, latencies and the gauge."""
    with serving(service_env(tmp_path / "db.sqlite3")) as server:
        client = Client(server.url)
        assert client.request("GET", "/no/such/route")[0] == 404
        assert client.request("GET", "/v1/metadata/missing")[0] == 404
        assert client.request("PUT", "/v1/metadata/k", {"value": "v"})[0] == 201
        assert client.request("PUT", "/v1/metadata/k", {"value": "w"})[0] == 200
        samples = metric_samples(client)
        client.close()
    counted = sorted(
        (*(dict(labels)[k] for k in ("route", "method", "status")), value)
        for (name, labels), value in samples.items()
        if name == "service_http_requests_total"
    )
    print(f"request counters: {counted}")
    item = "/v1/metadata/{key}"
    assert (
        metric(
            samples,
            "service_http_requests_total",
            route=item,
            method="PUT",
            status="201",
        )
        == 1
    )
    assert (
        metric(
            samples,
            "service_http_requests_total",
            route=item,
            method="PUT",
            status="200",
        )
        == 1
    )
    assert (
        metric(
            samples,
            "service_http_requests_total",
            route=item,
            method="GET",
            status="404",
        )
        == 1
    )
    unmatched = [
        value
        for (name, labels), value in samples.items()
        if name == "service_http_requests_total"
        and dict(labels)["method"] == "GET"
        and dict(labels)["status"] == "404"
        and dict(labels)["route"] != item
    ]
    # The unknown path is counted under one fixed label, not its own URL.
    assert unmatched == [1]
    assert not any("/no/such/route" in str(labels) for _, labels in samples)
    count = metric(
        samples, "service_http_request_duration_seconds_count", route=item, method="PUT"
    )
    assert count == 2
    assert (
        metric(
            samples,
            "service_http_request_duration_seconds_bucket",
            route=item,
            method="PUT",
            le="+Inf",
        )
        == 2
    )
    assert (
        0
        < metric(
            samples,
            "service_http_request_duration_seconds_sum",
            route=item,
            method="PUT",
        )
        < 5
    )
    assert metric(samples, "service_schema_version") == SHIPPED
    assert metric(samples, "service_db_busy_total") == 0
    assert metric(samples, "service_db_write_lock_wait_seconds_count") >= 2


@pytest.mark.timeout(60)
def test_made_up_methods_do_not_grow_metrics(tmp_path: Path) -> None:
    """400 requests with invented methods add 'other' series, not 400 new ones."""
    with serving(service_env(tmp_path / "db.sqlite3")) as server:
        client = Client(server.url)
        before = len(client.request("GET", "/metrics")[2])
        for n in range(200):
            # Falcon: 400 "Invalid HTTP method" on a route, 404 elsewhere.
            assert client.request(f"FOO{n}", "/healthz")[0] == 400
            assert client.request(f"BAR{n}X", f"/made/up/{n}")[0] == 404
        payload = client.request("GET", "/metrics")[2]
        samples = metric_samples(client)
        client.close()
    grew = len(payload) - before
    print(f"/metrics grew by {grew} bytes after 400 requests with invented methods")
    assert b"FOO" not in payload
    assert b"BAR" not in payload
    total = "service_http_requests_total"
    assert metric(samples, total, route="/healthz", method="other", status="400") == 200
    assert (
        metric(samples, total, route="unmatched", method="other", status="404") == 200
    )
    methods = {
        dict(labels)["method"] for (name, labels), _ in samples.items() if name == total
    }
    assert methods <= {"GET", "other"}
    assert grew < 8_000
