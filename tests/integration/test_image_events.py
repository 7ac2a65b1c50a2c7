"""Live delivery through the image: a stream, docker stop's retry hint, resume after start."""

from __future__ import annotations

import uuid

import pytest

from tests.events_helpers import open_stream
from tests.integration.harness import Docker, Service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def _token(service: Service, admin: str, handle: str) -> str:
    made = service.request(
        "POST", "/v1/users", {"handle": handle, "display_name": handle}, token=admin
    )
    assert made.status == 201, made.body
    issued = service.request("POST", f"/v1/users/{handle}/tokens", token=admin)
    assert issued.status == 201, issued.body
    return str(issued.body["token"])


def _post(service: Service, token: str, cid: int, body: str) -> dict[str, object]:
    posted = service.request(
        "POST", f"/v1/conversations/{cid}/messages", {"body": body}, token=token
    )
    assert posted.status == 201, posted.body
    return dict(posted.body)


def test_a_stream_survives_docker_stop_and_start_by_resuming(docker: Docker) -> None:
    """docker stop ends the stream with a retry hint; after start, it resumes losing nothing."""
    admin = "it-admin-" + uuid.uuid4().hex
    service = docker.service(SERVICE_ADMIN_TOKEN=admin)
    ann, bob = _token(service, admin, "ann"), _token(service, admin, "bob")
    created = service.request(
        "POST", "/v1/conversations", {"title": "t", "members": ["bob"]}, token=ann
    )
    assert created.status == 201, created.body
    cid = int(created.body["id"])
    host, port = service.address()
    stream = open_stream(f"http://{host}:{port}", bob)
    assert stream.status == 200, stream.body
    first = _post(service, ann, cid, "before the stop")
    assert stream.event().json == first

    assert service.stop() == 0
    ending = stream.until_end(timeout=30)
    stream.close()
    assert stream.ended  # the last chunk: a clean end
    assert any(frame.retry for frame in ending)

    service.start_again()
    later = [_post(service, ann, cid, f"after the start {i}") for i in range(3)]
    host, port = service.address()
    resumed = open_stream(f"http://{host}:{port}", bob, last_event_id=stream.last_id)
    try:
        assert [frame.json for frame in resumed.events(3)] == later
    finally:
        resumed.close()
