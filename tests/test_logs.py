"""Logs are one JSON object per line, access lines included."""

from __future__ import annotations

import io
import json
import logging
import time

import falcon.testing

from service import logs


def test_access_lines_are_json_whatever_the_path(
    client: falcon.testing.TestClient,
) -> None:
    """Each request writes one parseable JSON line carrying its request id."""
    stream = io.StringIO()
    logs.configure("INFO", stream=stream)
    try:
        result = client.simulate_get('/v1/metadata/a"b\\c\u00e9')
        client.simulate_get("/healthz", headers={"X-Request-ID": "trace-1"})
    finally:
        logs.configure("WARNING")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "service.access"]
    assert [line["path"] for line in access] == [
        '/v1/metadata/a"b\\c\u00e9',
        "/healthz",
    ]
    assert access[0]["status"] == result.status_code
    assert access[0]["request_id"] == result.headers["x-request-id"]
    assert access[1]["request_id"] == "trace-1"
    assert all(line["ts"].endswith("Z") for line in access)


def test_access_lines_follow_the_logger_level(
    client: falcon.testing.TestClient,
) -> None:
    """With the level above INFO no access line is written."""
    stream = io.StringIO()
    logs.configure("WARNING", stream=stream)
    client.simulate_get("/healthz")
    assert stream.getvalue() == ""
    assert not logging.getLogger(logs.ACCESS_LOGGER).isEnabledFor(logging.INFO)


def test_access_lines_reach_the_stream_on_their_own_in_order(
    client: falcon.testing.TestClient,
) -> None:
    """Queued access lines are written by the background flush, before later records."""
    stream = io.StringIO()
    logs.configure("INFO", stream=stream)
    try:
        client.simulate_get("/healthz", headers={"X-Request-ID": "first"})
        deadline = time.monotonic() + 5
        while "first" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "first" in stream.getvalue()  # nothing else made it flush
        client.simulate_get("/healthz", headers={"X-Request-ID": "second"})
        logging.getLogger("service").warning("after the second request")
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logs.configure("WARNING")
    assert [line.get("request_id") or line["msg"] for line in lines] == [
        "first",
        "second",
        "after the second request",
    ]
