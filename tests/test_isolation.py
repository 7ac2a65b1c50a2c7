"""Isolation as a property: non-members never learn anything of a conversation."""

from __future__ import annotations

import itertools

import falcon.testing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db.database import Database
from db.target import DatabaseTarget
from service.app import create_app
from tests.engines import settings_for
from tests.messaging_helpers import ADMIN_TOKEN, bearer, make_user, post

Client = falcon.testing.TestClient
WORDS = ("alpha", "bravo", "charlie", "delta")
_handles = itertools.count()


@pytest.fixture
def client(target: DatabaseTarget, database: Database) -> Client:
    """A client for an app with SERVICE_ADMIN_TOKEN set."""
    settings = settings_for(target, admin_token=ADMIN_TOKEN)
    return falcon.testing.TestClient(create_app(settings, database=database))


conversation = st.fixed_dictionaries(
    {
        "creator": st.integers(0, 4),
        "members": st.sets(st.integers(0, 4), max_size=3),
        "leavers": st.sets(st.integers(0, 4), max_size=2),
        "messages": st.lists(
            st.tuples(st.integers(0, 4), st.sampled_from(WORDS)), max_size=4
        ),
    }
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    users=st.integers(2, 5),
    conversations=st.lists(conversation, min_size=1, max_size=3),
)
def test_non_members_see_nothing(
    client: Client, users: int, conversations: list[dict[str, object]]
) -> None:
    """No request by a non-member reveals a conversation, member, message or hit."""
    handles = [f"usr{next(_handles)}" for _ in range(users)]
    tokens = [make_user(client, h) for h in handles]
    built: list[tuple[int, set[int], list[int]]] = []
    for spec in conversations:
        creator = int(spec["creator"]) % users  # type: ignore[call-overload]
        invited = {int(m) % users for m in spec["members"]} - {creator}  # type: ignore[attr-defined]
        result = client.simulate_post(
            "/v1/conversations",
            json={"title": "secret", "members": [handles[i] for i in sorted(invited)]},
            headers=bearer(tokens[creator]),
        )
        assert result.status_code == 201
        cid = result.json["id"]
        members = {creator} | invited
        message_ids = []
        for author, word in spec["messages"]:  # type: ignore[attr-defined]
            who = int(author) % users
            if who in members:
                message_ids.append(
                    post(client, tokens[who], cid, f"{word} secret")["id"]
                )
        for leaver in spec["leavers"]:  # type: ignore[attr-defined]
            who = int(leaver) % users
            if who in members:
                gone = client.simulate_delete(
                    f"/v1/conversations/{cid}/members/{handles[who]}",
                    headers=bearer(tokens[who]),
                )
                assert gone.status_code == 204
                members.discard(who)
        built.append((cid, members, message_ids))

    for cid, members, message_ids in built:
        base = f"/v1/conversations/{cid}"
        for who in range(users):
            headers = bearer(tokens[who])
            listed = client.simulate_get("/v1/conversations?limit=100", headers=headers)
            assert (cid in {c["id"] for c in listed.json["items"]}) == (who in members)
            hits = client.simulate_get(
                "/v1/search", params={"q": "secret", "limit": 50}, headers=headers
            )
            found = {h["message_id"] for h in hits.json["items"]}
            if who in members:
                assert client.simulate_get(base, headers=headers).status_code == 200
                assert set(message_ids) <= found
                continue
            assert not found & set(message_ids)
            probes = [
                client.simulate_get(base, headers=headers),
                client.simulate_get(base + "/messages", headers=headers),
                client.simulate_get(base + "/messages?after=0", headers=headers),
                client.simulate_post(
                    base + "/messages", json={"body": "hi"}, headers=headers
                ),
                client.simulate_post(
                    base + "/members", json={"handle": handles[who]}, headers=headers
                ),
                client.simulate_delete(
                    base + f"/members/{handles[0]}", headers=headers
                ),
            ] + [
                client.simulate_delete(base + f"/messages/{mid}", headers=headers)
                for mid in message_ids
            ]
            for probe in probes:
                assert probe.status_code == 404, probe.text
                assert probe.json["detail"] == f"no conversation {cid}"
