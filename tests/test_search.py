"""Search: scoped to the caller's conversations, bounded in time, same snippets."""

from __future__ import annotations

import html
import sqlite3
import time

import falcon.testing
import psycopg2
import pytest
from pony import orm

from db.database import Database, engine_for, open_database
from db.domain.search import SNIPPET_CHARS, candidates_sql
from db.domain.search_quota import refused_for
from db.errors import BudgetExceededError
from db.target import DatabaseTarget
from service.app import create_app
from tests.engines import rows, settings_for
from tests.messaging_helpers import ADMIN_TOKEN, bearer, make_user, post, start
from tests.test_api import assert_problem

Client = falcon.testing.TestClient

# Counting to 10**9 takes minutes on either engine: only a stop ends it early.
SLOW = (
    "SELECT count(*) FROM (WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL "
    "SELECT n + 1 FROM c WHERE n < 1000000000) SELECT n FROM c) counted"
)


@pytest.fixture
def client(target: DatabaseTarget, database: Database) -> Client:
    """A client for an app on this test's database."""
    return falcon.testing.TestClient(
        create_app(settings_for(target, admin_token=ADMIN_TOKEN), database=database)
    )


def search(
    client: Client, token: str, q: str, limit: int = 50
) -> list[dict[str, object]]:
    """The items of GET /v1/search, asserting a 200."""
    result = client.simulate_get(
        "/v1/search", params={"q": q, "limit": limit}, headers=bearer(token)
    )
    assert result.status_code == 200, result.text
    items: list[dict[str, object]] = result.json["items"]
    return items


def test_a_statement_past_its_budget_is_stopped(database: Database) -> None:
    """bounded_select stops a runaway statement near its budget; the connection lives on."""
    dialect = database.engine.dialect
    with orm.db_session:
        began = time.monotonic()
        with pytest.raises(BudgetExceededError):
            dialect.bounded_select(database.orm, SLOW, {}, 0.2)
        assert time.monotonic() - began < 3
        # The same session and connection answer the next statement in full.
        assert dialect.bounded_select(database.orm, "SELECT 1", {}, 5) == [1]


@pytest.mark.engines("postgres")
def test_the_budget_never_outlives_its_statement(database: Database) -> None:
    """statement_timeout is set for the search statement alone (a pooler may swap sessions)."""
    dialect = database.engine.dialect
    with orm.db_session:
        dialect.bounded_select(database.orm, "SELECT 1", {}, 0.5)
        (setting,) = database.orm.select("SELECT current_setting('statement_timeout')")
    assert setting == "0"


def test_search_past_its_budget_is_503_with_retry_after(
    target: DatabaseTarget, database: Database
) -> None:
    """A search that overruns SERVICE_SEARCH_BUDGET answers 503 with Retry-After."""
    settings = settings_for(target, search_budget=0.000001, admin_token=ADMIN_TOKEN)
    client = falcon.testing.TestClient(create_app(settings, database=database))
    ann = make_user(client, "ann")
    cid = start(client, ann, [])
    with orm.db_session:
        me = database.users.by_handles(["ann"])["ann"]
    with database.writing():
        for i in range(1500):
            database.messages.post(me, cid, f"lunch number {i}")
    result = client.simulate_get(
        "/v1/search", params={"q": "lunch"}, headers=bearer(ann)
    )
    problem = assert_problem(result, 503)
    assert "search" in problem["detail"]
    assert result.headers["Retry-After"].isdigit()


def test_others_conversations_are_never_read(target: DatabaseTarget) -> None:
    """The plan starts at the caller's memberships and seeks search_terms by its key."""
    sql = candidates_sql(2).replace("$", ":")
    if target.dialect == "sqlite":
        plan = " | ".join(
            str(r[-1])
            for r in rows(
                target,
                "EXPLAIN QUERY PLAN "
                + sql.replace(":user_id", "1")
                .replace(":w0", "'a'")
                .replace(":w1", "'b'")
                .replace(":before", "9")
                .replace(":n", "5"),
            )
        )
        assert "SCAN" not in plan.replace("SCAN hit", ""), plan
        assert "memberships" in plan, plan
        assert "search_terms" in plan, plan
        assert "conversation_id=? AND term=?" in plan, plan
        return
    con = psycopg2.connect(target.url)  # type: ignore[union-attr]
    try:
        cur = con.cursor()
        # Others' conversations hold 20,000 entries for the words (their
        # parent rows left out: foreign keys off for this session), and
        # the planner knows it (ANALYZE), as in a database in service.
        cur.execute("SET session_replication_role = replica")
        cur.execute(
            "INSERT INTO search_terms (conversation_id, term, message_id) "
            "SELECT 1000 + i / 100, w, 10000 + i "
            "FROM generate_series(0, 19999) i, (VALUES ('a'), ('b')) v(w)"
        )
        con.commit()
        cur.execute("ANALYZE")
        cur.execute(
            "EXPLAIN "
            + sql.replace(":user_id", "1")
            .replace(":w0", "'a'")
            .replace(":w1", "'b'")
            .replace(":before", "9223372036854775807")
            .replace(":n", "5")
        )
        plan = "\n".join(r[0] for r in cur.fetchall())
    finally:
        con.close()
    assert "on search_terms" in plan, plan
    assert "Seq Scan on search_terms" not in plan, plan
    assert "conversation_id = mb.conversation_id" in plan, plan


def test_search_finds_only_the_callers_conversations(client: Client) -> None:
    """Hits come from conversations the caller is in, never from others'."""
    ann, bob = make_user(client, "ann"), make_user(client, "bob")
    mine = start(client, ann, ["bob"])
    theirs = start(client, bob, [])
    post(client, bob, mine, "lunch together")
    post(client, bob, theirs, "lunch alone")
    assert [h["conversation_id"] for h in search(client, ann, "lunch")] == [mine]
    assert len(search(client, bob, "lunch")) == 2


def test_snippets_are_bounded_escaped_and_marked(client: Client) -> None:
    """A long body's snippet is at most SNIPPET_CHARS around the match, escaped."""
    ann = make_user(client, "ann")
    cid = start(client, ann, [])
    body = "filler <b>&amp; " * 200 + "Café at noon " + "after " * 200
    post(client, ann, cid, body)
    (hit,) = search(client, ann, "cafe")
    snippet = str(hit["snippet"])
    assert "<mark>Café</mark>" in snippet
    text = html.unescape(snippet.replace("<mark>", "").replace("</mark>", ""))
    assert len(text) <= SNIPPET_CHARS + 2  # and an ellipsis at each cut end
    assert text.startswith("…")
    assert text.endswith("…")
    assert "<b>" not in snippet.replace("<mark>", "").replace("</mark>", "")


def test_newest_first_under_a_limit(client: Client) -> None:
    """Under a limit the newest matching messages come back, newest first."""
    ann = make_user(client, "ann")
    cid = start(client, ann, [])
    ids = [post(client, ann, cid, f"lunch {i}")["id"] for i in range(5)]
    hits = search(client, ann, "lunch", limit=3)
    assert [h["message_id"] for h in hits] == ids[::-1][:3]


def test_search_rate_holds_across_databases_and_refusals_write_nothing(
    target: DatabaseTarget, database: Database
) -> None:
    """SERVICE_SEARCH_RATE counts in the database: two apps share one limit; 429s write nothing."""
    other = open_database(engine=engine_for(target))
    try:
        apps = [
            falcon.testing.TestClient(
                create_app(
                    settings_for(target, admin_token=ADMIN_TOKEN, search_rate=3),
                    database=db,
                )
            )
            for db in (database, other)
        ]
        ann = make_user(apps[0], "ann")
        statuses = [
            apps[i % 2]
            .simulate_get("/v1/search", params={"q": "x"}, headers=bearer(ann))
            .status_code
            for i in range(3)
        ]
        assert statuses == [200, 200, 200]
        (due_before,) = rows(target, "SELECT due_at FROM search_quotas")
        refused = apps[1].simulate_get(
            "/v1/search", params={"q": "x"}, headers=bearer(ann)
        )
        assert_problem(refused, 429)
        assert 1 <= int(refused.headers["Retry-After"]) <= 20
        assert rows(target, "SELECT due_at FROM search_quotas") == [due_before]
        # Another token of another user has its own allowance.
        bob = make_user(apps[0], "bob")
        assert (
            apps[1]
            .simulate_get("/v1/search", params={"q": "x"}, headers=bearer(bob))
            .status_code
            == 200
        )
    finally:
        other.close()


@pytest.mark.parametrize(
    ("due_at", "now", "rate", "expected"),
    [
        (0.0, 100.0, 60, None),  # never searched: allowed
        (159.0, 100.0, 60, None),  # 59 s ahead: the tolerance for 60/min
        (160.5, 100.0, 60, 2),  # 60.5 s ahead: wait until 1.5 s pass, rounded up
        (100.0, 100.0, 1, None),  # one a minute: the first is allowed at once
        (160.0, 100.0, 1, 60),  # and the next a minute later
    ],
)
def test_rate_arithmetic(
    due_at: float, now: float, rate: int, expected: int | None
) -> None:
    """GCRA: a burst of rate searches, then one every 60/rate s; waits round up."""
    assert refused_for(due_at, now, rate) == expected


@pytest.mark.engines("sqlite")
def test_the_work_of_a_search_does_not_grow_with_others_data(
    client: Client, target: DatabaseTarget
) -> None:
    """SQLite's instructions for a caller's search stay flat when others hold 20,000 hits."""
    ann = make_user(client, "ann")
    cid = start(client, ann, [])
    for i in range(5):
        post(client, ann, cid, f"lunch {i}")
    query = (
        candidates_sql(1)
        .replace("$user_id", "1")
        .replace("$w0", "'lunch'")
        .replace("$before", str(2**63 - 1))
        .replace("$n", "20")
    )

    def steps() -> int:
        counted = 0

        def tick() -> int:
            nonlocal counted
            counted += 1
            return 0

        con = sqlite3.connect(target.path)  # type: ignore[union-attr]
        try:
            con.set_progress_handler(tick, 10)
            assert len(con.execute(query).fetchall()) == 5
        finally:
            con.close()
        return counted

    alone = steps()
    con = sqlite3.connect(target.path)  # type: ignore[union-attr]
    try:  # others' conversations 1000-1199, 100 hits each (no parents: FKs off here)
        con.executemany(
            "INSERT INTO search_terms (conversation_id, term, message_id) VALUES (?, ?, ?)",
            [(1000 + i // 100, "lunch", 10_000 + i) for i in range(20_000)],
        )
        con.commit()
    finally:
        con.close()
    after = steps()
    assert after <= alone * 1.2 + 5
