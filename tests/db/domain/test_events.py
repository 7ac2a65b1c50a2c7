"""Events are written with their change, kept as a prefix, and pruned as one."""

from __future__ import annotations

from datetime import timedelta

import pytest

from db.database import Database
from db.target import DatabaseTarget
from service.events.following import Following
from tests.engines import rows


def kinds(target: DatabaseTarget) -> list[str]:
    """The kinds of the stored events, in id order."""
    return [r[0] for r in rows(target, "SELECT kind FROM events ORDER BY id")]


def test_an_event_commits_and_rolls_back_with_its_change(
    database: Database, target: DatabaseTarget
) -> None:
    """A committed post has its event; a rolled-back one leaves neither behind."""
    with database.writing():
        ann = database.users.create("ann", "Ann")
        bob = database.users.create("bob", "Bob")
        cid = database.conversations.create(ann, "t", [bob]).id
        database.messages.post(ann, cid, "kept")
    assert kinds(target) == ["conversation.created", "message.posted"]

    def fail_after_the_post() -> None:
        with database.writing():
            database.messages.post(bob, cid, "lost")
            raise RuntimeError("the request failed after the post")

    with pytest.raises(RuntimeError):
        fail_after_the_post()
    assert kinds(target) == ["conversation.created", "message.posted"]
    assert rows(target, "SELECT count(*) FROM messages")[0][0] == 1


def test_membership_periods_open_and_close_at_their_events(
    database: Database, target: DatabaseTarget
) -> None:
    """A removal closes the member's period at its own event; a re-add opens another."""
    with database.writing():
        ann = database.users.create("ann", "Ann")
        bob = database.users.create("bob", "Bob")
        cid = database.conversations.create(ann, "t", [bob]).id
    with database.writing():
        database.members.remove(ann.id, cid, "bob")
    with database.writing():
        database.members.add(ann.id, cid, "bob")
    events = rows(target, "SELECT id, kind FROM events ORDER BY id")
    assert [k for _, k in events] == [
        "conversation.created",
        "member.removed",
        "member.added",
    ]
    periods = rows(
        target,
        "SELECT since_event, until_event FROM membership_periods p "
        "JOIN users u ON u.id = p.user_id WHERE u.handle = 'bob' ORDER BY since_event",
    )
    assert [tuple(p) for p in periods] == [
        (events[0][0], events[1][0]),
        (events[2][0], None),
    ]


def test_pruning_removes_a_prefix_and_records_where_it_ends(
    database: Database, target: DatabaseTarget
) -> None:
    """Pruning past the window removes the oldest events and raises pruned_through."""
    with database.writing():
        ann = database.users.create("ann", "Ann")
        cid = database.conversations.create(ann, "t", []).id
        for i in range(5):
            database.messages.post(ann, cid, f"m{i}")
    newest = rows(target, "SELECT max(id) FROM events")[0][0]
    assert Following(database, timedelta(hours=1)).prune() == 0  # all recent
    with database.reading():
        assert database.feed.pruned_through() == 0
    assert Following(database, timedelta(0)).prune() == 6
    assert rows(target, "SELECT count(*) FROM events")[0][0] == 0
    with database.reading():
        assert database.feed.pruned_through() == newest
        assert database.feed.newest() == newest  # known though none is left
    assert Following(database, timedelta(0)).resume(str(newest - 1)).reset == "expired"
    assert Following(database, timedelta(0)).resume(str(newest)).after == newest
