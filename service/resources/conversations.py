"""Conversations and their members: a user's own API.

Every responder first resolves the bearer token to a user (401 otherwise);
the db layer answers a conversation the user is not a member of exactly as
one that does not exist (404), so nothing reveals it. Messages and search,
inside these conversations, are in messages.py.
"""

from __future__ import annotations

from typing import Any

import falcon
from spectree import Response

from db.domain.conversations import Conversations as ConversationStore
from db.domain.records import ConversationRecord, MemberRecord
from db.domain.users import Users as UserStore
from service.auth import caller
from service.bodies import read_json
from service.openapi import Route, documented
from service.params import check_handle, read_query, utc_iso
from service.problems import Problem
from service.resources import ID, Context
from service.schemas import (
    ConversationIn,
    ConversationOut,
    ConversationPageOut,
    ConversationsQuery,
    MemberIn,
    MemberOut,
    ProblemOut,
)

# One conversation's URI template; messages.py nests under it.
CONVERSATION = f"/v1/conversations/{{conversation_id:{ID}}}"

AUTH_ERRORS = {"HTTP_401": ProblemOut}
WRITE_ERRORS = {
    "HTTP_400": ProblemOut,
    "HTTP_401": ProblemOut,
    "HTTP_413": ProblemOut,
    "HTTP_415": ProblemOut,
    "HTTP_422": ProblemOut,
    "HTTP_503": ProblemOut,
}


def _member(member: MemberRecord) -> dict[str, Any]:
    return {
        "handle": member.handle,
        "display_name": member.display_name,
        "joined_at": utc_iso(member.joined_at),
    }


def _conversation(record: ConversationRecord, *, members: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": record.id,
        "title": record.title,
        "created_by": record.created_by,
        "created_at": utc_iso(record.created_at),
        "last_message_at": utc_iso(record.last_message_at),
    }
    if members:
        out["members"] = [_member(m) for m in record.members]
    return out


class Conversations:
    """GET/POST /v1/conversations, GET /v1/conversations/{conversation_id}."""

    def __init__(
        self, conversations: ConversationStore, users: UserStore, max_body_bytes: int
    ) -> None:
        self._conversations = conversations
        self._users = users
        self._max_body = max_body_bytes

    @documented(
        auth="user",
        json=ConversationIn,
        tags=["conversations"],
        resp=Response(HTTP_201=ConversationOut, **WRITE_ERRORS),
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Start a conversation with the given members; the caller is one."""
        me = caller(req)
        body = read_json(req, ConversationIn, self._max_body)
        found = self._users.by_handles(body.members)
        missing = [
            {"detail": f"no user with handle {handle!r}", "pointer": f"#/members/{i}"}
            for i, handle in enumerate(body.members)
            if handle not in found
        ]
        if missing:
            raise Problem(422, "unknown member handles", errors=missing)
        record = self._conversations.create(me.user, body.title, found.values())
        resp.media = _conversation(record, members=True)
        resp.status = falcon.HTTP_201

    @documented(
        auth="user",
        query=ConversationsQuery,
        tags=["conversations"],
        resp=Response(HTTP_200=ConversationPageOut, HTTP_422=ProblemOut, **AUTH_ERRORS),
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """My conversations, most recent activity first, paged with ?cursor=."""
        me = caller(req)
        query = read_query(req, ConversationsQuery)
        try:
            page = self._conversations.page(me.user.id, query.limit, query.cursor)
        except ValueError as ex:
            raise Problem(
                422,
                "invalid query parameters",
                errors=[{"detail": str(ex), "parameter": "cursor"}],
            ) from ex
        resp.media = {
            "items": [_conversation(c, members=False) for c in page.items],
            "next": page.next,
        }

    @documented(
        auth="user",
        tags=["conversations"],
        resp=Response(HTTP_200=ConversationOut, HTTP_404=ProblemOut, **AUTH_ERRORS),
    )
    def on_get_item(
        self, req: falcon.Request, resp: falcon.Response, conversation_id: int
    ) -> None:
        """One of my conversations with its members, or 404."""
        me = caller(req)
        record = self._conversations.get(me.user.id, conversation_id)
        resp.media = _conversation(record, members=True)


class Members:
    """POST .../members and DELETE .../members/{handle}, for members only."""

    def __init__(self, conversations: ConversationStore, max_body_bytes: int) -> None:
        self._conversations = conversations
        self._max_body = max_body_bytes

    @documented(
        auth="user",
        json=MemberIn,
        tags=["conversations"],
        resp=Response(
            HTTP_200=MemberOut, HTTP_201=MemberOut, HTTP_404=ProblemOut, **WRITE_ERRORS
        ),
    )
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, conversation_id: int
    ) -> None:
        """Add a member: 201, or 200 when already one."""
        me = caller(req)
        body = read_json(req, MemberIn, self._max_body)
        member, added = self._conversations.add_member(
            me.user.id, conversation_id, body.handle
        )
        resp.media = _member(member)
        resp.status = falcon.HTTP_201 if added else falcon.HTTP_200

    @documented(
        auth="user",
        tags=["conversations"],
        resp=Response("HTTP_204", HTTP_404=ProblemOut, **AUTH_ERRORS),
    )
    def on_delete_item(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        conversation_id: int,
        handle: str,
    ) -> None:
        """Remove a member (yourself included): 204, or 404."""
        me = caller(req)
        self._conversations.remove_member(
            me.user.id, conversation_id, check_handle(handle)
        )
        resp.status = falcon.HTTP_204


def routes(context: Context) -> list[Route]:
    """A user's conversations and their members."""
    database, max_body = context.database, context.max_body
    conversations = Conversations(database.conversations, database.users, max_body)
    members = Members(database.conversations, max_body)
    return [
        ("/v1/conversations", conversations, None),
        (CONVERSATION, conversations, "item"),
        (f"{CONVERSATION}/members", members, None),
        (f"{CONVERSATION}/members/{{handle}}", members, "item"),
    ]
