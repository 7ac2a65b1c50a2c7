"""Live delivery across processes: serve processes on one database, restarts, kill -9.

Each test runs real `python -m service serve` processes: on SQLite two on
one file (data_version tells each of the other's commits), on PostgreSQL
two replicas (polling, or LISTEN/NOTIFY on a direct URL).
"""

from __future__ import annotations

import json
import random
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from db.target import DatabaseTarget, PostgresTarget
from tests.engines import env_for
from tests.events_helpers import Frame, SseStream, open_stream
from tests.helpers import ServeProcess, start_serve
from tests.messaging_helpers import ADMIN_TOKEN

pytestmark = pytest.mark.slow


def call(
    url: str, method: str, path: str, token: str, body: Any = None
) -> tuple[int, Any]:
    """One JSON request with a bearer token; status and decoded body."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as ex:
        raw = ex.read()
        return ex.code, json.loads(raw) if raw else None


def user(url: str, handle: str) -> str:
    """Create a user through url; a token of theirs."""
    status, _ = call(
        url,
        "POST",
        "/v1/users",
        ADMIN_TOKEN,
        {"handle": handle, "display_name": handle},
    )
    assert status == 201
    status, issued = call(url, "POST", f"/v1/users/{handle}/tokens", ADMIN_TOKEN)
    assert status == 201
    return str(issued["token"])


def post(url: str, token: str, cid: int, body: str) -> dict[str, Any]:
    """Post a message through url."""
    status, message = call(
        url, "POST", f"/v1/conversations/{cid}/messages", token, {"body": body}
    )
    assert status == 201, message
    return dict(message)


@pytest.fixture
def serve(target: DatabaseTarget) -> Iterator[Any]:
    """Start serve processes on target; all stopped afterwards."""
    started: list[ServeProcess] = []

    def launch(**settings: Any) -> ServeProcess:
        env = env_for(target, admin_token=ADMIN_TOKEN, **settings)
        served = start_serve(env)
        started.append(served)
        return served

    yield launch
    for served in started:
        if served.process.poll() is None:
            served.stop(signal.SIGKILL)


def listen_settings(target: DatabaseTarget) -> list[dict[str, Any]]:
    """The ways replicas learn of each other's events on target."""
    if isinstance(target, PostgresTarget):
        return [{}, {"events_listen_url": target.url}]
    return [{}]


def test_an_event_committed_by_one_process_reaches_streams_of_another(
    target: DatabaseTarget, serve: Any
) -> None:
    """A post through process B arrives on a stream held by process A, at once."""
    for settings in listen_settings(target):
        a, b = serve(**settings), serve(**settings)
        suffix = str(len(settings))
        ann, bob = user(a.url, "ann" + suffix), user(b.url, "bob" + suffix)
        stream = open_stream(a.url, ann)
        try:
            status, created = call(
                b.url,
                "POST",
                "/v1/conversations",
                bob,
                {"title": "t", "members": ["ann" + suffix]},
            )
            assert status == 201
            posted = post(b.url, bob, created["id"], "across processes")
            got = stream.events(2, timeout=10)
            assert [f.event for f in got] == ["conversation.created", "message.posted"]
            assert got[1].json == posted
        finally:
            stream.close()
        a.stop()
        b.stop()


def test_resume_after_kill_9_and_restart_gets_every_event_once(
    target: DatabaseTarget, serve: Any
) -> None:
    """Events acknowledged before a kill -9 are served after the restart, once."""
    a = serve()
    ann, bob = user(a.url, "ann"), user(a.url, "bob")
    _status, created = call(
        a.url, "POST", "/v1/conversations", ann, {"title": "t", "members": ["bob"]}
    )
    cid = created["id"]
    stream = open_stream(a.url, bob)
    first = post(a.url, ann, cid, "one")
    assert stream.event().json == first  # opened after the creation: not its event
    last = stream.last_id
    before_kill = [post(a.url, ann, cid, f"b{i}") for i in range(3)]
    a.stop(signal.SIGKILL)
    stream.close()
    b = serve()
    after = [post(b.url, ann, cid, f"a{i}") for i in range(3)]
    again = open_stream(b.url, bob, last_event_id=last)
    try:
        assert [f.json for f in again.events(6)] == before_kill + after
    finally:
        again.close()


def test_random_disconnects_across_processes_lose_and_repeat_nothing(
    target: DatabaseTarget, serve: Any
) -> None:
    """A client that drops at random points and resumes anywhere gets each event once."""
    settings = listen_settings(target)[-1]
    servers = [serve(**settings), serve(**settings)]
    ann, bob = user(servers[0].url, "ann"), user(servers[1].url, "bob")
    _status, created = call(
        servers[0].url,
        "POST",
        "/v1/conversations",
        ann,
        {"title": "t", "members": ["bob"]},
    )
    cid = created["id"]
    rng = random.Random(25)
    stream: SseStream | None = open_stream(servers[1].url, bob)
    assert stream is not None
    stream.frame()
    last = stream.frame().id  # type: ignore[union-attr]
    posted: list[int] = []
    received: list[Frame] = []
    for round_ in range(12):
        for i in range(rng.randint(1, 6)):
            writer = rng.choice(servers)
            posted.append(post(writer.url, ann, cid, f"r{round_}m{i}")["id"])
        if stream is not None and rng.random() < 0.5:
            # read some of what is due, then drop the connection
            due = len(posted) - len(
                [f for f in received if f.event == "message.posted"]
            )
            for _ in range(rng.randint(0, due)):
                frame = stream.event()
                received.append(frame)
                last = frame.id
            stream.close()
            stream = None
        if stream is None:
            stream = open_stream(rng.choice(servers).url, bob, last_event_id=last)
            assert stream.status == 200
    due = len(posted) - len([f for f in received if f.event == "message.posted"])
    assert stream is not None
    received.extend(stream.events(due))
    stream.close()
    messages = [f.json["id"] for f in received if f.event == "message.posted"]
    assert messages == posted
    ids = [int(f.id or 0) for f in received]
    assert ids == sorted(set(ids))


def test_concurrent_writers_on_two_processes_reach_a_stream_once_in_order(
    target: DatabaseTarget, serve: Any
) -> None:
    """Posts racing through two processes: every one arrives once, in id order.

    On PostgreSQL ids commit out of order; the reader must hold back at a
    gap until it settles, neither skipping an id nor sending one twice.
    """
    settings = listen_settings(target)[0]  # polling: the fallback behind a pooler
    a, b = serve(**settings), serve(**settings)
    ann = user(a.url, "ann")
    writers = [user(b.url, f"writer{i}") for i in range(6)]
    status, created = call(
        a.url,
        "POST",
        "/v1/conversations",
        ann,
        {"title": "t", "members": [f"writer{i}" for i in range(6)]},
    )
    assert status == 201
    cid = created["id"]
    stream = open_stream(a.url, ann)
    stream.frame()
    start = stream.frame().id  # type: ignore[union-attr]
    posted: list[int] = []
    lock = threading.Lock()

    def write(index: int) -> None:
        for i in range(15):
            url = (a, b)[(index + i) % 2].url
            got = post(url, writers[index], cid, f"w{index} m{i}")["id"]
            with lock:
                posted.append(got)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        got = stream.events(len(posted), timeout=30)
    finally:
        stream.close()
    ids = [int(f.id or 0) for f in got]
    assert ids == sorted(set(ids))
    assert sorted(f.json["id"] for f in got) == sorted(posted)
    resumed = open_stream(b.url, ann, last_event_id=start)
    try:
        again = resumed.events(len(posted), timeout=30)
    finally:
        resumed.close()
    assert [f.id for f in again] == [f.id for f in got]
