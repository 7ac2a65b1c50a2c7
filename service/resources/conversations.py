"""Conversations and their members: a user's own API.

Every responder first resolves the bearer token to a user (401 otherwise);
the db layer answers a conversation the user is not a member of exactly as
one that does not exist (404), so nothing reveals it. Only the owner adds
members and removes others; anyone may leave (db/domain/members.py). Messages and
search, inside these conversations, are in messages.py; handing ownership
over and the operator's moderation, in ownership.py.
"""

from __future__ import annotations

from typing import ClassVar

import falcon
from pydantic import BaseModel, ConfigDict, Field
from spectree import Response

from db.domain.conversations import Conversations as ConversationStore
from db.domain.members import Members as MemberStore
from db.domain.records import ConversationPage, MemberRecord
from db.domain.users import Users as UserStore
from service.auth import caller
from service.bodies import read_json
from service.fields import Text
from service.openapi import Route, documented
from service.params import read_query
from service.problems import Problem
from service.rendering import send, send_one
from service.resources import ID, Context
from service.schemas import (
    CURSOR_PATTERN,
    ConversationOut,
    ConversationSummaryOut,
    Handle,
    MemberIn,
    MemberOut,
    ProblemOut,
)

# One conversation's URI template; messages.py nests under it.
CONVERSATION = f"/v1/conversations/{{conversation_id:{ID}}}"


class ConversationIn(BaseModel):
    """Body of POST /v1/conversations."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: Text = Field(min_length=1, max_length=200, examples=["Plans"])
    members: list[Handle] = Field(
        default_factory=list,
        max_length=100,
        description="Handles of existing users to add; the creator is always a "
        "member and the owner. One unknown handle makes it a 422 that does not "
        "say which (no bulk probing of handles)",
        examples=[["bob"]],
    )


class ConversationPageOut(BaseModel):
    """My conversations, most recent activity first."""

    __record__: ClassVar[type] = ConversationPage

    items: list[ConversationSummaryOut]
    next: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end",
        examples=[None],
    )


class ConversationsQuery(BaseModel):
    """Query parameters of GET /v1/conversations."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(
        None,
        max_length=200,
        pattern=CURSOR_PATTERN,
        description="Opaque: only a `next` this API returned (422 otherwise)",
    )


class Conversations:
    """GET/POST /v1/conversations, GET /v1/conversations/{conversation_id}."""

    def __init__(self, conversations: ConversationStore, users: UserStore) -> None:
        self._conversations = conversations
        self._users = users

    @documented(
        auth="user",
        json=ConversationIn,
        tags=["conversations"],
        resp=Response(HTTP_201=ConversationOut),
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Start a conversation with the given members; the caller owns it."""
        me = caller(req)
        body = read_json(req, ConversationIn)
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
        send(resp, ConversationOut, record, falcon.HTTP_201)
        resp.location = f"/v1/conversations/{record.id}"

    @documented(
        auth="user",
        query=ConversationsQuery,
        tags=["conversations"],
        resp=Response(HTTP_200=ConversationPageOut),
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
        send(resp, ConversationPageOut, page)

    @documented(
        auth="user",
        etag=True,
        tags=["conversations"],
        resp=Response(HTTP_200=ConversationOut),
    )
    def on_get_item(
        self, req: falcon.Request, resp: falcon.Response, conversation_id: int
    ) -> None:
        """One of my conversations with its members, or 404."""
        me = caller(req)
        record = self._conversations.get(me.user.id, conversation_id)
        send_one(req, resp, ConversationOut, record)


def send_member(
    resp: falcon.Response, conversation_id: int, member: MemberRecord, added: bool
) -> None:
    """Answer an added member: 201 with its Location, or 200 when one already."""
    send(resp, MemberOut, member, falcon.HTTP_201 if added else falcon.HTTP_200)
    if added:
        resp.location = f"/v1/conversations/{conversation_id}/members/{member.handle}"


class Members:
    """POST .../members (the owner) and DELETE .../members/{handle}."""

    def __init__(self, members: MemberStore) -> None:
        self._members = members

    @documented(
        auth="user",
        json=MemberIn,
        tags=["conversations"],
        resp=Response(HTTP_200=MemberOut, HTTP_201=MemberOut, HTTP_403=ProblemOut),
    )
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, conversation_id: int
    ) -> None:
        """Add a member (the owner only): 201, or 200 when already one."""
        me = caller(req)
        body = read_json(req, MemberIn)
        member, added = self._members.add(me.user.id, conversation_id, body.handle)
        send_member(resp, conversation_id, member, added)

    @documented(
        auth="user",
        tags=["conversations"],
        resp=Response("HTTP_204", HTTP_403=ProblemOut),
    )
    def on_delete_item(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        conversation_id: int,
        handle: Handle,
    ) -> None:
        """Leave (your own handle), or remove another member (the owner only)."""
        me = caller(req)
        self._members.remove(me.user.id, conversation_id, handle)
        resp.status = falcon.HTTP_204


def routes(context: Context) -> list[Route]:
    """A user's conversations and their members."""
    database = context.database
    conversations = Conversations(database.conversations, database.users)
    members = Members(database.members)
    return [
        ("/v1/conversations", conversations, None),
        (CONVERSATION, conversations, "item"),
        (f"{CONVERSATION}/members", members, None),
        (f"{CONVERSATION}/members/{{handle}}", members, "item"),
    ]
