"""Conversations and their members: a user's own API.

Every responder first resolves the bearer token to a user (401 otherwise);
the db layer answers a conversation the user is not a member of exactly as
one that does not exist (404), so nothing reveals it. Only the owner adds
members and removes others; anyone may leave (db/members.py). Messages and
search, inside these conversations, are in messages.py; handing ownership
over and the operator's moderation, in ownership.py.
"""

from __future__ import annotations

from typing import Any

import falcon
from spectree import Response

from db import ConversationRecord, MemberRecord
from db.conversations import Conversations as ConversationStore
from db.members import Members as MemberStore
from db.users import Users as UserStore
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


def member_out(member: MemberRecord) -> dict[str, Any]:
    """The JSON of a member."""
    return {
        "handle": member.handle,
        "display_name": member.display_name,
        "joined_at": utc_iso(member.joined_at),
    }


def conversation_out(record: ConversationRecord, *, members: bool) -> dict[str, Any]:
    """The JSON of a conversation, with its members or (in listings) without."""
    out: dict[str, Any] = {
        "id": record.id,
        "title": record.title,
        "created_by": record.created_by,
        "owner": record.owner,
        "created_at": utc_iso(record.created_at),
        "last_message_at": utc_iso(record.last_message_at),
    }
    if members:
        out["members"] = [member_out(m) for m in record.members]
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
        """Start a conversation with the given members; the caller owns it."""
        me = caller(req)
        body = read_json(req, ConversationIn, self._max_body)
        found = self._users.by_handles(body.members)
        if len(found) != len(set(body.members)):
            # Not which ones: a request tells at most that all of its
            # handles exist, one bit, however many it guesses (docs/api.md).
            raise Problem(
                422,
                "members: at least one handle names no user (which is not said, "
                "so that guessed handles cannot be probed in bulk)",
                errors=[{"detail": "unknown handle(s)", "pointer": "#/members"}],
            )
        record = self._conversations.create(me.user, body.title, found.values())
        resp.media = conversation_out(record, members=True)
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
            "items": [conversation_out(c, members=False) for c in page.items],
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
        resp.media = conversation_out(record, members=True)


class Members:
    """POST .../members (the owner) and DELETE .../members/{handle}."""

    def __init__(self, members: MemberStore, max_body_bytes: int) -> None:
        self._members = members
        self._max_body = max_body_bytes

    @documented(
        auth="user",
        json=MemberIn,
        tags=["conversations"],
        resp=Response(
            HTTP_200=MemberOut,
            HTTP_201=MemberOut,
            HTTP_403=ProblemOut,
            HTTP_404=ProblemOut,
            **WRITE_ERRORS,
        ),
    )
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, conversation_id: int
    ) -> None:
        """Add a member (the owner only): 201, or 200 when already one."""
        me = caller(req)
        body = read_json(req, MemberIn, self._max_body)
        member, added = self._members.add(me.user.id, conversation_id, body.handle)
        resp.media = member_out(member)
        resp.status = falcon.HTTP_201 if added else falcon.HTTP_200

    @documented(
        auth="user",
        tags=["conversations"],
        resp=Response(
            "HTTP_204", HTTP_403=ProblemOut, HTTP_404=ProblemOut, **AUTH_ERRORS
        ),
    )
    def on_delete_item(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        conversation_id: int,
        handle: str,
    ) -> None:
        """Leave (your own handle), or remove another member (the owner only)."""
        me = caller(req)
        self._members.remove(me.user.id, conversation_id, check_handle(handle))
        resp.status = falcon.HTTP_204


def routes(context: Context) -> list[Route]:
    """A user's conversations and their members."""
    database, max_body = context.database, context.max_body
    conversations = Conversations(database.conversations, database.users, max_body)
    members = Members(database.members, max_body)
    return [
        ("/v1/conversations", conversations, None),
        (CONVERSATION, conversations, "item"),
        (f"{CONVERSATION}/members", members, None),
        (f"{CONVERSATION}/members/{{handle}}", members, "item"),
    ]
