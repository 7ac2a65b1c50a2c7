"""Logs: JSON lines in ECS field names; access lines are `logging` records."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import falcon.testing
import pytest

from service import logs

# The fields docs/operations.md promises on every line, and on access lines.
ENVELOPE = {
    "@timestamp",
    "log.level",
    "message",
    "ecs.version",
    "log.logger",
    "process.pid",
}
ACCESS = {
    "http.request.method",
    "url.path",
    "http.route",
    "http.response.status_code",
    "event.duration",
    "http.request.id",
}


class Records(logging.Handler):
    """A handler like one a user adds (OpenTelemetry's, Sentry's): keeps records."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record."""
        self.records.append(record)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Configure logging at INFO into a string; back to WARNING afterwards."""
    out = io.StringIO()
    logs.configure("INFO", stream=out)
    yield out
    logs.configure("WARNING")


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_access_lines_are_ecs_json_whatever_the_path(
    client: falcon.testing.TestClient, stream: io.StringIO
) -> None:
    """Each request writes one JSON line with the documented ECS fields."""
    result = client.simulate_get('/v1/metadata/a"b\\c\u00e9')
    client.simulate_get("/healthz", headers={"X-Request-ID": "trace-1"})
    client.simulate_get("/no/such/route")
    access = [line for line in _lines(stream) if line["log.logger"] == "service.access"]
    assert all(set(line) == ENVELOPE | ACCESS for line in access), access
    assert [line["url.path"] for line in access] == [
        '/v1/metadata/a"b\\c\u00e9',
        "/healthz",
        "/no/such/route",
    ]
    assert [line["http.route"] for line in access] == [
        "/v1/metadata/{key}",
        "/healthz",
        None,
    ]
    first = access[0]
    assert first["http.response.status_code"] == result.status_code
    assert first["http.request.id"] == result.headers["x-request-id"]
    assert first["http.request.method"] == "GET"
    assert first["message"] == f'GET /v1/metadata/a"b\\c\u00e9 {result.status_code}'
    assert isinstance(first["event.duration"], int)
    assert first["event.duration"] > 0
    assert (first["log.level"], first["ecs.version"]) == ("INFO", logs.ECS_VERSION)
    assert access[1]["http.request.id"] == "trace-1"
    assert all(line["@timestamp"].endswith("Z") for line in access)


def test_a_handler_a_user_adds_sees_every_access_record(
    client: falcon.testing.TestClient,
) -> None:
    """Handlers on the root logger, added before or after configure, get the records."""
    before, after = Records(), Records()
    root = logging.getLogger()
    root.addHandler(before)
    try:
        logs.configure("INFO", stream=io.StringIO())
        root.addHandler(after)
        client.simulate_get("/healthz", headers={"X-Request-ID": "seen-1"})
    finally:
        root.removeHandler(before)
        root.removeHandler(after)
        logs.configure("WARNING")
    for handler in (before, after):
        [record] = [r for r in handler.records if r.name == logs.ACCESS_LOGGER]
        fields = vars(record)
        assert fields["http.request.id"] == "seen-1"
        assert fields["http.response.status_code"] == 200
        assert fields["http.route"] == "/healthz"
        assert record.getMessage() == "GET /healthz 200"
        assert record.levelno == logging.INFO


def test_other_records_use_the_same_shape(stream: io.StringIO) -> None:
    """A record with extras and an exception: ECS envelope, extras, error.* fields."""
    log = logging.getLogger("service")
    try:
        raise KeyError("k")
    except KeyError:
        log.exception("failed here", extra={"event.action": "failed"})
    [line] = _lines(stream)
    assert set(line) >= ENVELOPE
    assert (line["message"], line["log.level"]) == ("failed here", "ERROR")
    assert line["event.action"] == "failed"
    assert line["error.type"] == "KeyError"
    assert line["error.message"] == "'k'"
    assert line["error.stack_trace"].startswith("Traceback")


def test_a_filter_that_adds_fields_reaches_the_line(
    client: falcon.testing.TestClient, stream: io.StringIO
) -> None:
    """A filter adding attributes (a trace id, say) shows them on access lines too."""

    def add_trace(record: logging.LogRecord) -> bool:
        record.__dict__["trace.id"] = "abc123"
        return True

    handler = logging.getLogger().handlers[-1]
    handler.addFilter(add_trace)
    client.simulate_get("/healthz")
    [line] = [x for x in _lines(stream) if x["log.logger"] == "service.access"]
    assert line["trace.id"] == "abc123"
    assert line["http.route"] == "/healthz"


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
    client: falcon.testing.TestClient, stream: io.StringIO
) -> None:
    """Queued access lines are written by the background flush, before later records."""
    client.simulate_get("/healthz", headers={"X-Request-ID": "first"})
    deadline = time.monotonic() + 5
    while "first" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "first" in stream.getvalue()  # nothing else made it flush
    client.simulate_get("/healthz", headers={"X-Request-ID": "second"})
    logging.getLogger("service").warning("after the second request")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line.get("http.request.id") or line["message"] for line in lines] == [
        "first",
        "second",
        "after the second request",
    ]
