"""Events are written with their change, kept as a prefix, and pruned as one."""

from __future__ import annotations

from datetime import timedelta

import psycopg2
import pytest

from db.database import Database
from db.target import DatabaseTarget, PostgresTarget
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


class EventWriter:
    """Another connection's transaction that writes an event as the stores do."""

    def __init__(self, target: DatabaseTarget) -> None:
        assert isinstance(target, PostgresTarget)
        self.con = psycopg2.connect(target.url)
        cur = self.con.cursor()
        cur.execute("SELECT pg_current_xact_id()")  # as Dialect.before_event
        cur.execute(
            "INSERT INTO events (conversation_id, kind, data, created_at) "
            "VALUES (NULL, 'test.event', '{}', now()) RETURNING id"
        )
        self.id = int(cur.fetchone()[0])

    def end(self, commit: bool) -> None:
        """Commit or roll back, and close."""
        if commit:
            self.con.commit()
        else:
            self.con.rollback()
        self.con.close()


def read_ids(following: Following, cursor: int) -> tuple[list[int], bool]:
    """The settled ids after cursor, and whether a gap waits."""
    events, _, waiting = following.read(cursor)
    return [e.id for e in events], waiting


@pytest.mark.engines("postgres")  # SQLite's writers take turns: ids commit in order
@pytest.mark.parametrize("commit", [True, False])
def test_the_postgres_tail_holds_back_at_a_gap_until_it_settles(
    database: Database, target: DatabaseTarget, commit: bool
) -> None:
    """An id committed after a later one is neither skipped nor sent twice."""
    following = Following(database, timedelta(hours=1))
    cursor = following.start()
    assert cursor is not None
    slow = EventWriter(target)  # takes id N, still running
    fast = EventWriter(target)  # takes id N+1
    fast.end(commit=True)
    assert read_ids(following, cursor) == ([], True)  # N may still commit
    assert read_ids(following, cursor) == ([], True)
    slow.end(commit=commit)
    expected = [slow.id, fast.id] if commit else [fast.id]
    got, waiting = read_ids(following, cursor)
    assert (got, waiting) == (expected, False)


@pytest.mark.engines("postgres")  # SQLite's writers take turns
def test_the_postgres_tail_starts_after_writers_in_flight_end(
    database: Database, target: DatabaseTarget
) -> None:
    """A new reader's start waits for the event writers running when it looked."""
    following = Following(database, timedelta(hours=1))
    slow = EventWriter(target)
    fast = EventWriter(target)
    fast.end(commit=True)
    assert following.start() is None  # slow's id is below the newest: not settled
    slow.end(commit=True)
    assert following.start() == fast.id
