"""Live delivery (GET /v1/events): what a stream receives, on both engines.

A real waitress server holds the streams (they are handed over to the
hub's thread); writes go through the same app in-process, so that their
events are committed with them exactly as a request's would be.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import falcon.testing
import pytest

from db.database import Database
from db.target import DatabaseTarget
from service.app import create_app
from service.events.following import Following
from service.events.hub import Hub
from service.resources.events import EVENT_TYPES
from service.server import Server
from tests.engines import settings_for
from tests.events_helpers import SseStream, open_stream
from tests.messaging_helpers import ADMIN, ADMIN_TOKEN, bearer, make_user, post, start

Client = falcon.testing.TestClient


@dataclass
class Live:
    """A served app with its hub, a client for writes, and users' tokens."""

    url: str
    client: Client
    hub: Hub
    tokens: dict[str, str]
    opened: list[SseStream] = field(default_factory=list)

    def stream(self, handle: str, last_event_id: str | None = None) -> SseStream:
        """An open stream of handle's events; its status checked."""
        stream = open_stream(self.url, self.tokens[handle], last_event_id)
        self.opened.append(stream)
        assert stream.status == 200, stream.body
        return stream


@contextlib.contextmanager
def serving(
    target: DatabaseTarget, database: Database, **settings: object
) -> Iterator[tuple[str, Client, Hub]]:
    """The app with its hub on a real waitress server."""
    config = settings_for(target, admin_token=ADMIN_TOKEN, **settings)
    hub = Hub(database, config)
    app = create_app(config, database=database, hub=hub)
    server = Server(
        app,
        host="127.0.0.1",
        port=0,
        threads=4,
        shutdown_timeout=5,
        on_stop=hub.shutdown,
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    hub.start()
    try:
        yield server.url, falcon.testing.TestClient(app), hub
    finally:
        server.stop()
        thread.join(timeout=10)


@pytest.fixture
def live(target: DatabaseTarget, database: Database) -> Iterator[Live]:
    """ann, bob, cat and dan on a served app."""
    with serving(target, database) as (url, client, hub):
        tokens = {h: make_user(client, h) for h in ("ann", "bob", "cat", "dan")}
        opened = Live(url, client, hub, tokens)
        try:
            yield opened
        finally:
            for stream in opened.opened:
                stream.close()


def test_a_posted_message_reaches_every_member_stream(live: Live) -> None:
    """A message posted in a conversation arrives on each member's stream, as REST."""
    ann, bob = live.stream("ann"), live.stream("bob")
    cid = start(live.client, live.tokens["ann"], ["bob"])
    posted = post(live.client, live.tokens["bob"], cid, "hello")
    for stream in (ann, bob):
        created = stream.event()
        assert created.event == "conversation.created"
        assert created.json["id"] == cid
        message = stream.event()
        assert message.event == "message.posted"
        assert message.json == posted
        assert int(message.id or 0) > int(created.id or 0)
    assert ann.headers["content-type"].startswith("text/event-stream")


def add(live: Live, actor: str, cid: int, handle: str) -> None:
    """actor adds handle to the conversation."""
    got = live.client.simulate_post(
        f"/v1/conversations/{cid}/members",
        json={"handle": handle},
        headers=bearer(live.tokens[actor]),
    )
    assert got.status_code == 201, got.text


def remove(live: Live, actor: str, cid: int, handle: str) -> None:
    """actor removes handle from the conversation."""
    got = live.client.simulate_delete(
        f"/v1/conversations/{cid}/members/{handle}",
        headers=bearer(live.tokens[actor]),
    )
    assert got.status_code == 204, got.text


def test_a_stream_gets_only_its_own_conversations(live: Live) -> None:
    """Events of a conversation the caller is not in never reach their stream."""
    cat = live.stream("cat")
    private = start(live.client, live.tokens["ann"], ["bob"])
    post(live.client, live.tokens["ann"], private, "not for cat")
    mine = start(live.client, live.tokens["ann"], ["cat"])
    post(live.client, live.tokens["cat"], mine, "for cat")
    got = cat.events(2)
    assert [
        (f.event, f.json.get("conversation_id", f.json.get("id"))) for f in got
    ] == [
        ("conversation.created", mine),
        ("message.posted", mine),
    ]


def test_a_removed_member_gets_their_removal_and_nothing_after(live: Live) -> None:
    """Removal is the last event of that conversation its member receives."""
    cid = start(live.client, live.tokens["ann"], ["bob"])
    bob = live.stream("bob")
    post(live.client, live.tokens["ann"], cid, "before")
    remove(live, "ann", cid, "bob")
    post(live.client, live.tokens["ann"], cid, "after")
    marker = start(live.client, live.tokens["cat"], ["bob"])
    got = bob.events(3)
    assert [f.event for f in got] == [
        "message.posted",
        "member.removed",
        "conversation.created",
    ]
    assert got[0].json["body"] == "before"
    assert got[1].json["member"]["handle"] == "bob"
    assert got[1].json["by"] == "ann"
    assert got[2].json["id"] == marker


def test_an_added_member_gets_events_from_their_addition(live: Live) -> None:
    """A member added later receives their addition and what follows, not before."""
    cid = start(live.client, live.tokens["ann"], ["bob"])
    cat = live.stream("cat")
    post(live.client, live.tokens["ann"], cid, "before cat")
    add(live, "ann", cid, "cat")
    post(live.client, live.tokens["ann"], cid, "with cat")
    got = cat.events(2)
    assert [f.event for f in got] == ["member.added", "message.posted"]
    assert got[0].json["member"]["handle"] == "cat"
    assert got[1].json["body"] == "with cat"


def test_a_deleted_message_is_told(live: Live) -> None:
    """message.deleted names the message and its conversation."""
    cid = start(live.client, live.tokens["ann"], ["bob"])
    posted = post(live.client, live.tokens["ann"], cid, "oops")
    bob = live.stream("bob")
    got = live.client.simulate_delete(
        f"/v1/conversations/{cid}/messages/{posted['id']}",
        headers=bearer(live.tokens["ann"]),
    )
    assert got.status_code == 204, got.text
    deleted = bob.event()
    assert deleted.event == "message.deleted"
    assert deleted.json == {"id": posted["id"], "conversation_id": cid}


def test_resume_after_a_disconnect_misses_nothing_and_repeats_nothing(
    live: Live,
) -> None:
    """Last-Event-ID resumes right after that event: the missed ones, in order."""
    cid = start(live.client, live.tokens["ann"], ["bob"])
    bob = live.stream("bob")
    first = post(live.client, live.tokens["ann"], cid, "one")
    seen = bob.event()
    assert seen.json == first
    bob.close()
    missed = [post(live.client, live.tokens["ann"], cid, f"m{i}") for i in range(5)]
    again = live.stream("bob", last_event_id=seen.id)
    got = again.events(5)
    assert [f.json for f in got] == missed
    ids = [int(f.id or 0) for f in got]
    assert ids == sorted(ids)
    assert int(seen.id or 0) < ids[0]
    live_now = post(live.client, live.tokens["ann"], cid, "live")
    assert again.event().json == live_now


def test_resume_judges_membership_when_each_event_happened(live: Live) -> None:
    """A removed member resuming from before the removal gets up to it, then nothing."""
    bob = live.stream("bob")
    cid = start(live.client, live.tokens["ann"], ["bob"])
    created = bob.event()
    bob.close()
    post(live.client, live.tokens["ann"], cid, "while away")
    remove(live, "ann", cid, "bob")
    post(live.client, live.tokens["ann"], cid, "after removal")
    marker = start(live.client, live.tokens["cat"], ["bob"])
    again = live.stream("bob", last_event_id=created.id)
    got = again.events(3)
    assert [f.event for f in got] == [
        "message.posted",
        "member.removed",
        "conversation.created",
    ]
    assert got[2].json["id"] == marker


def test_query_parameters_serve_a_browser_event_source(live: Live) -> None:
    """?access_token= and ?last_event_id= stand in for headers EventSource cannot set."""
    cid = start(live.client, live.tokens["ann"], ["bob"])
    first = post(live.client, live.tokens["ann"], cid, "one")
    second = post(live.client, live.tokens["ann"], cid, "two")
    probe = live.stream("bob")
    probe.close()
    stream = open_stream(live.url, None, query={"access_token": live.tokens["bob"]})
    live.opened.append(stream)
    assert stream.status == 200, stream.body
    third = post(live.client, live.tokens["ann"], cid, "three")
    got = stream.event()
    assert got.json == third
    resumed = open_stream(
        live.url,
        None,
        query={
            "access_token": live.tokens["bob"],
            "last_event_id": str(int(got.id or 0) - 2),
        },
    )
    live.opened.append(resumed)
    assert [f.json for f in resumed.events(2)] == [second, third]
    assert first["id"] < second["id"]


def test_a_new_stream_starts_with_its_position(live: Live) -> None:
    """A new stream tells its retry delay and an id-only frame to resume from."""
    stream = live.stream("ann")
    retry = stream.frame()
    assert retry is not None
    assert retry.retry is not None
    assert retry.retry > 0
    position = stream.frame()
    assert position is not None
    assert position.id is not None
    assert position.event is None


def test_an_unknown_or_malformed_last_event_id_opens_with_a_reset(live: Live) -> None:
    """An id this database never issued opens the stream with a reset, then live."""
    cid = start(live.client, live.tokens["ann"], ["bob"])
    for sent in ("999999999", "abc"):
        stream = live.stream("bob", last_event_id=sent)
        reset = stream.event()
        assert reset.event == "reset"
        assert reset.json == {"reason": "unknown", "last_event_id": sent}
        posted = post(live.client, live.tokens["ann"], cid, sent)
        assert stream.event().json == posted
        stream.close()


def test_a_revoked_token_ends_its_streams_at_once(live: Live) -> None:
    """Revoking a token ends its open streams; a new one with it is refused."""
    created = live.client.simulate_post("/v1/users/bob/tokens", headers=ADMIN)
    token_id, token = created.json["id"], created.json["token"]
    live.tokens["bob2"] = token
    doomed, other = live.stream("bob2"), live.stream("bob")
    doomed.frame()  # retry: the stream is held
    revoked = live.client.simulate_delete(f"/v1/tokens/{token_id}", headers=ADMIN)
    assert revoked.status_code == 204
    doomed.until_end(timeout=5)
    assert doomed.ended or doomed.frame(timeout=1) is None
    refused = open_stream(live.url, token)
    assert refused.status == 401
    cid = start(live.client, live.tokens["ann"], ["bob"])
    assert other.event().json["id"] == cid  # the user's other token still streams


def test_streams_per_token_are_limited(
    target: DatabaseTarget, database: Database
) -> None:
    """Past SERVICE_EVENTS_STREAMS_PER_TOKEN a token's next stream gets 429."""
    with serving(target, database, events_streams_per_token=2) as (url, client, _):
        token = make_user(client, "ann")
        held = [open_stream(url, token) for _ in range(2)]
        try:
            assert [s.status for s in held] == [200, 200]
            refused = open_stream(url, token)
            assert refused.status == 429
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["retry-after"]) > 0
            held.pop().close()
            deadline = time.monotonic() + 5
            while True:  # the hub notices the close
                again = open_stream(url, token)
                if again.status == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            held.append(again)
            assert again.status == 200
        finally:
            for stream in held:
                stream.close()


def test_heartbeats_keep_a_quiet_stream_alive(
    target: DatabaseTarget, database: Database
) -> None:
    """A quiet stream gets a comment every SERVICE_EVENTS_HEARTBEAT seconds."""
    with serving(target, database, events_heartbeat=0.2) as (url, client, _):
        stream = open_stream(url, make_user(client, "ann"))
        try:
            comments = [f for f in stream.until_end_or(1.0) if f.comment]
            assert len(comments) >= 2
        finally:
            stream.close()


def test_shutdown_ends_every_stream_with_a_retry_hint(
    target: DatabaseTarget, database: Database
) -> None:
    """Stopping the server ends each stream cleanly, telling it when to come back."""
    with serving(target, database) as (url, client, hub):
        stream = open_stream(url, make_user(client, "ann"))
        stream.frame()
        stream.frame()
        hub.shutdown()
        frames = stream.until_end(timeout=10)
        assert stream.ended  # the last chunk: a clean end, not a reset connection
        assert any(f.retry for f in frames)
        stream.close()


def test_resuming_from_past_the_retention_window_opens_with_a_reset(
    live: Live, database: Database
) -> None:
    """An id whose events were pruned gets a reset (expired), then live events."""
    cid = start(live.client, live.tokens["ann"], ["bob"])
    bob = live.stream("bob")
    post(live.client, live.tokens["ann"], cid, "old")
    old = bob.event()
    bob.close()
    post(live.client, live.tokens["ann"], cid, "pruned too")
    assert Following(database, timedelta(0)).prune() >= 2
    stream = live.stream("bob", last_event_id=old.id)
    reset = stream.event()
    assert reset.event == "reset"
    assert reset.json == {"reason": "expired", "last_event_id": old.id}
    posted = post(live.client, live.tokens["ann"], cid, "new")
    assert stream.event().json == posted


def metric(url: str, name: str) -> float:
    """The sum of a metric's samples on /metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{")
    )


@pytest.mark.slow  # megabytes of events to fill the socket buffers
def test_a_slow_consumer_is_cut_off_and_resumes_from_its_last_id(
    target: DatabaseTarget, database: Database
) -> None:
    """Past SERVICE_EVENTS_BUFFER_BYTES unsent the stream closes; resuming gets the rest."""
    with serving(target, database, events_buffer_bytes=4096) as (url, client, _):
        ann, bob = make_user(client, "ann"), make_user(client, "bob")
        cid = start(client, ann, ["bob"])
        slow = open_stream(url, bob)
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        assert metric(url, "service_events_streams") == 1
        posted = []
        for i in range(400):  # far more than the socket buffers and the cap hold
            posted.append(post(client, ann, cid, f"{i:04d}" + "x" * 30_000)["id"])
            if i % 10 == 9 and metric(
                url, 'service_events_streams_closed_total{reason="slow"}'
            ):
                break
        assert metric(url, 'service_events_streams_closed_total{reason="slow"}') == 1
        got = []
        with contextlib.suppress(EOFError, ConnectionResetError):
            while True:
                got.append(slow.event(timeout=5))
        slow.close()
        resumed = open_stream(url, bob, last_event_id=slow.last_id)
        missing = len(posted) - len(got)
        got.extend(resumed.events(missing))
        resumed.close()
        assert [f.json["id"] for f in got] == posted
        assert metric(url, "service_events_sent_total") >= len(posted)


def test_the_contract_documents_the_stream(client: Client) -> None:
    """/openapi.json: a text/event-stream 200, Last-Event-ID, each type's data schema."""
    document = client.simulate_get("/openapi.json").json
    operation = document["paths"]["/v1/events"]["get"]
    ok = operation["responses"]["200"]["content"]["text/event-stream"]
    assert set(ok["x-event-types"]) == set(EVENT_TYPES)
    for ref in ok["x-event-types"].values():
        assert ref["$ref"].rsplit("/", 1)[1] in document["components"]["schemas"]
    names = {(p["name"], p["in"]) for p in operation["parameters"]}
    assert {("Last-Event-ID", "header"), ("last_event_id", "query")} <= names
    assert {"429", "503"} <= set(operation["responses"])


def test_other_wsgi_servers_get_a_501_not_a_hung_worker(live: Live) -> None:
    """Under a server that cannot hand a connection over, the stream is a 501 problem."""
    got = live.client.simulate_get("/v1/events", headers=bearer(live.tokens["ann"]))
    assert got.status_code == 501
    assert got.headers["content-type"] == "application/problem+json"
