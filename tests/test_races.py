"""Every guarded write, raced against the change of its guard (tests/races.py).

Each case holds the lock the write needs from another connection, sends
the write over HTTP, performs the revocation, removal or deletion in the
holding transaction while the write waits, commits, and checks that the
write was refused and stored nothing: the 2xx the competing writer
answered is final.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from db.database import Database
from db.engines.postgres.locks import key_number
from db.target import DatabaseTarget
from tests.engines import rows
from tests.messaging_helpers import ADMIN
from tests.races import REVOKED_AT, Holder, Service, conversation_lock, race, serving


@dataclass
class Scene:
    """ann owns a conversation with bob; carl is a user outside it."""

    service: Service
    ann: str
    bob: str
    bob_token_id: int
    carl: str
    cid: int

    def user_id(self, handle: str) -> int:
        """The id of the user called handle."""
        ((found,),) = rows(
            self.service.target, "SELECT id FROM users WHERE handle = ?", (handle,)
        )
        return int(found)

    def members(self) -> list[str]:
        """The conversation's members' handles, sorted."""
        found = rows(
            self.service.target,
            "SELECT u.handle FROM memberships m JOIN users u ON u.id = m.user_id "
            "WHERE m.conversation_id = ? ORDER BY u.handle",
            (self.cid,),
        )
        return [r[0] for r in found]

    def messages_by(self, handle: str) -> int:
        """How many messages handle has in the conversation."""
        ((count,),) = rows(
            self.service.target,
            "SELECT count(*) FROM messages m JOIN users u ON u.id = m.author_id "
            "WHERE m.conversation_id = ? AND u.handle = ?",
            (self.cid, handle),
        )
        return int(count)


@pytest.fixture
def scene(target: DatabaseTarget, database: Database) -> Iterator[Scene]:
    """The service on a real server, with ann, bob (members) and carl."""
    with serving(database, target) as service:
        ann, _ = service.user("ann")
        bob, bob_token_id = service.user("bob")
        carl, _ = service.user("carl")
        made = service.setup.simulate_post(
            "/v1/conversations",
            json={"title": "plans", "members": ["bob"]},
            headers={"Authorization": f"Bearer {ann}"},
        )
        assert made.status_code == 201, made.text
        yield Scene(service, ann, bob, bob_token_id, carl, int(made.json["id"]))


def remove(scene: Scene, handle: str) -> Callable[[Holder], None]:
    """The act: handle leaves (or is removed); an owner's ownership passes on."""

    def act(holder: Holder) -> None:
        user_id = scene.user_id(handle)
        holder.run(
            "DELETE FROM memberships WHERE conversation_id = ? AND user_id = ?",
            (scene.cid, user_id),
        )
        if holder.has_column("conversations", "owner_id"):
            # What the service does when the owner goes: the next member owns it.
            holder.run(
                "UPDATE conversations SET owner_id = (SELECT user_id FROM memberships "
                "WHERE conversation_id = ? ORDER BY joined_at, user_id LIMIT 1) "
                "WHERE id = ? AND owner_id = ?",
                (scene.cid, scene.cid, user_id),
            )

    return act


def test_a_token_revoked_while_its_write_waits_writes_nothing(scene: Scene) -> None:
    """A post authenticated before DELETE /v1/tokens/{id} committed is 401 after it."""
    path = f"/v1/conversations/{scene.cid}/messages"
    status, payload = race(
        scene.service,
        (
            # What the revocation locks, and a poster to the same conversation.
            f"SELECT 1 FROM api_tokens WHERE id = {scene.bob_token_id} FOR UPDATE",
            conversation_lock(scene.cid),
        ),
        lambda: scene.service.send("POST", path, {"body": "late"}, scene.bob),
        lambda holder: holder.run(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ?",
            (REVOKED_AT, scene.bob_token_id),
        ),
    )
    assert status == 401, payload
    assert scene.messages_by("bob") == 0


def test_a_member_removed_while_their_post_waits_posts_nothing(scene: Scene) -> None:
    """A post that passed the membership check before the removal committed is 404."""
    path = f"/v1/conversations/{scene.cid}/messages"
    status, payload = race(
        scene.service,
        (conversation_lock(scene.cid),),
        lambda: scene.service.send("POST", path, {"body": "late"}, scene.bob),
        remove(scene, "bob"),
    )
    assert status == 404, payload
    assert scene.messages_by("bob") == 0


def test_a_member_removed_while_their_delete_waits_deletes_nothing(
    scene: Scene,
) -> None:
    """Deleting one's message after one's removal committed is 404; the message stays."""
    posted = scene.service.setup.simulate_post(
        f"/v1/conversations/{scene.cid}/messages",
        json={"body": "mine"},
        headers={"Authorization": f"Bearer {scene.bob}"},
    )
    mid = posted.json["id"]
    path = f"/v1/conversations/{scene.cid}/messages/{mid}"
    status, payload = race(
        scene.service,
        (
            conversation_lock(scene.cid),
            f"SELECT 1 FROM messages WHERE id = {mid} FOR UPDATE",
        ),
        lambda: scene.service.send("DELETE", path, token=scene.bob),
        remove(scene, "bob"),
    )
    assert status == 404, payload
    assert scene.messages_by("bob") == 1


def test_an_owner_removed_while_their_add_waits_adds_nothing(scene: Scene) -> None:
    """Adding a member after one's own removal committed is 404; nobody is added."""
    path = f"/v1/conversations/{scene.cid}/members"
    status, payload = race(
        scene.service,
        (
            conversation_lock(scene.cid),
            f"SELECT 1 FROM conversations WHERE id = {scene.cid} FOR UPDATE",
        ),
        lambda: scene.service.send("POST", path, {"handle": "carl"}, scene.ann),
        remove(scene, "ann"),
    )
    assert status == 404, payload
    assert scene.members() == ["bob"]


def test_an_owner_removed_while_their_removal_waits_removes_nobody(
    scene: Scene,
) -> None:
    """Removing a member after one's own removal committed is 404; the member stays."""
    bob_id = scene.user_id("bob")
    path = f"/v1/conversations/{scene.cid}/members/bob"
    status, payload = race(
        scene.service,
        (
            conversation_lock(scene.cid),
            "SELECT 1 FROM memberships "
            f"WHERE conversation_id = {scene.cid} AND user_id = {bob_id} FOR UPDATE",
        ),
        lambda: scene.service.send("DELETE", path, token=scene.ann),
        remove(scene, "ann"),
    )
    assert status == 404, payload
    assert scene.members() == ["bob"]


def test_a_metadata_delete_waiting_behind_another_delete_is_404(
    scene: Scene,
) -> None:
    """Of two deletes of one key, the one that waited answers 404, not a second 204."""
    service = scene.service
    assert service.setup.simulate_put(
        "/v1/metadata/k", json={"value": "v"}, headers=ADMIN
    ).status_code in (200, 201)
    status, payload = race(
        service,
        ("SELECT 1 FROM app_metadata WHERE key = 'k' FOR UPDATE",),
        lambda: service.send("DELETE", "/v1/metadata/k"),
        lambda holder: holder.run("DELETE FROM app_metadata WHERE key = 'k'"),
    )
    assert status == 404, payload
    assert rows(service.target, "SELECT key FROM app_metadata WHERE key = 'k'") == []


def test_a_metadata_put_waiting_behind_a_delete_creates_the_key_anew(
    scene: Scene,
) -> None:
    """A PUT that waited while its key was deleted answers 201 (created), not 200."""
    service = scene.service
    service.setup.simulate_put("/v1/metadata/k", json={"value": "old"}, headers=ADMIN)
    status, payload = race(
        service,
        (
            "SELECT 1 FROM app_metadata WHERE key = 'k' FOR UPDATE",
            f"SELECT pg_advisory_xact_lock({key_number('app_metadata', 'k')})",
        ),
        lambda: service.send("PUT", "/v1/metadata/k", {"value": "new"}),
        lambda holder: holder.run("DELETE FROM app_metadata WHERE key = 'k'"),
    )
    assert status == 201, payload
    assert rows(service.target, "SELECT value FROM app_metadata WHERE key = 'k'") == [
        ("new",)
    ]


def hand_over_to_bob(scene: Scene) -> Callable[[Holder], None]:
    """The act: ann hands ownership to bob (PUT .../owner answered 200)."""

    def act(holder: Holder) -> None:
        holder.run(
            "UPDATE conversations SET owner_id = ? WHERE id = ?",
            (scene.user_id("bob"), scene.cid),
        )

    return act


def test_an_add_waiting_while_ownership_is_handed_over_is_403(scene: Scene) -> None:
    """The former owner's add that waited for the hand-over is refused; nobody added."""
    path = f"/v1/conversations/{scene.cid}/members"
    status, payload = race(
        scene.service,
        (conversation_lock(scene.cid),),
        lambda: scene.service.send("POST", path, {"handle": "carl"}, scene.ann),
        hand_over_to_bob(scene),
    )
    assert status == 403, payload
    assert scene.members() == ["ann", "bob"]


def test_a_removal_waiting_while_ownership_is_handed_over_is_403(
    scene: Scene,
) -> None:
    """The former owner's removal of the new owner that waited is refused."""
    path = f"/v1/conversations/{scene.cid}/members/bob"
    status, payload = race(
        scene.service,
        (conversation_lock(scene.cid),),
        lambda: scene.service.send("DELETE", path, token=scene.ann),
        hand_over_to_bob(scene),
    )
    assert status == 403, payload
    assert scene.members() == ["ann", "bob"]
