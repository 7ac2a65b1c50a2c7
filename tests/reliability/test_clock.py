"""One clock for ordering: a replica whose host clock is off keeps the order.

Two replicas serve one PostgreSQL database; one runs under libfaketime
(Debian's `faketime` package, preloaded) with its clock an hour behind. Stamps that order
things (a message's created_at, a conversation's last_message_at,
metadata's updated_at) come from the database, so whichever replica
writes, they follow the order of the writes.
"""

from __future__ import annotations

import glob
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from db.target import PostgresTarget
from tests import engines
from tests.helpers import ServeProcess
from tests.messaging_helpers import ADMIN_TOKEN
from tests.reliability.support import Client, serving

pytestmark = [pytest.mark.slow, pytest.mark.engines("postgres")]

SKEW = timedelta(hours=1)


def find_libfaketime() -> str:
    """Debian's libfaketime (multi-threaded); skips where it is missing.

    Preloaded into the replica itself rather than through the `faketime`
    wrapper, which forks: a SIGKILL of the wrapper would orphan the server.
    """
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        if os.environ.get("SERVICE_REQUIRE_POSTGRES") == "1":
            pytest.fail("libfaketime not found (apt-get install faketime)")
        pytest.skip("libfaketime not found (apt-get install faketime)")
    return found[0]


def stamp(text: str) -> datetime:
    """An RFC 3339 stamp of an answer or a log line, as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Replica:
    """One serve process and a keep-alive client to it."""

    def __init__(self, server: ServeProcess) -> None:
        self.server = server
        self.client = Client(server.url)

    def call(
        self, method: str, path: str, body: Any = None, token: str = ADMIN_TOKEN
    ) -> Any:
        """One request that must succeed; its decoded JSON."""
        status, _, raw = self.client.request(
            method, path, body, headers={"Authorization": f"Bearer {token}"}
        )
        assert status in (200, 201), (status, raw)
        return json.loads(raw)


@pytest.mark.timeout(180)
def test_a_replica_with_a_slow_clock_keeps_the_order(target: PostgresTarget) -> None:
    """Writes alternating between an on-time replica and one an hour behind: message
    stamps follow ids, last activity never moves back, the list order is right."""
    env = engines.env_for(target, admin_token=ADMIN_TOKEN, threads=2)
    slow_env = {
        **env,
        "LD_PRELOAD": find_libfaketime(),
        "FAKETIME": f"-{int(SKEW.total_seconds())}",  # seconds behind
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # timeouts keep their length
    }
    with serving(env) as on_time_server, serving(slow_env) as slow_server:
        # The skew is real: the slow replica's own log stamps are an hour behind.
        logged = stamp(slow_server.lines[-1]["@timestamp"])
        assert datetime.now(UTC) - logged > SKEW - timedelta(minutes=5)
        on_time, slow = Replica(on_time_server), Replica(slow_server)
        try:
            on_time.call("POST", "/v1/users", {"handle": "ann", "display_name": "Ann"})
            ann = on_time.call("POST", "/v1/users/ann/tokens")["token"]
            first, second = (
                slow.call(
                    "POST", "/v1/conversations", {"title": t, "members": []}, ann
                )["id"]
                for t in ("first", "second")
            )
            messages = []
            for n in range(6):
                replica = (on_time, slow)[n % 2]
                path = f"/v1/conversations/{first}/messages"
                messages.append(replica.call("POST", path, {"body": f"m{n}"}, ann))
            by_id = sorted(messages, key=lambda m: m["id"])
            assert [m["body"] for m in by_id] == [f"m{n}" for n in range(6)]
            stamps = [stamp(m["created_at"]) for m in by_id]
            assert stamps == sorted(stamps), stamps
            assert datetime.now(UTC) - stamps[-1] < timedelta(minutes=5)
            conversation = on_time.call("GET", f"/v1/conversations/{first}", token=ann)
            assert stamp(conversation["last_message_at"]) == stamps[-1]
            # The on-time replica bumps `second`, then the slow one bumps `first`:
            # `first` has the latest activity and is listed first.
            on_time.call(
                "POST", f"/v1/conversations/{second}/messages", {"body": "x"}, ann
            )
            slow.call("POST", f"/v1/conversations/{first}/messages", {"body": "y"}, ann)
            listed = on_time.call("GET", "/v1/conversations", token=ann)["items"]
            assert [c["id"] for c in listed] == [first, second]
            # Metadata: the slow replica's later write is the later updated_at.
            before = on_time.call("PUT", "/v1/metadata/k", {"value": "1"})
            after = slow.call("PUT", "/v1/metadata/k", {"value": "2"})
            assert stamp(after["updated_at"]) >= stamp(before["updated_at"])
        finally:
            for replica in (on_time, slow):
                replica.client.close()
