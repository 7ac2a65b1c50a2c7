"""Conversations and their members: a user's own API.

Every responder first resolves the bearer token to a user (401 otherwise);
the db layer answers a conversation the user is not a member of exactly as
one that does not exist (404), so nothing reveals it. Messages and search,
inside these conversations, are in messages.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import falcon
from pydantic import BaseModel, ConfigDict, Field
from spectree import Response

from db import ConversationRecord, MemberRecord
from db.conversations import Conversations as ConversationStore
from db.records import ConversationPage
from db.users import Users as UserStore
from service.auth import caller
from service.bodies import read_json
from service.fields import Text
from service.openapi import Route, documented
from service.params import read_query
from service.problems import Problem
from service.rendering import send, send_one
from service.resources import ID, Context
from service.schemas import CURSOR_PATTERN, Handle

# One conversation's URI template; messages.py nests under it.
CONVERSATION = f"/v1/conversations/{{conversation_id:{ID}}}"


class ConversationIn(BaseModel):
    """Body of POST /v1/conversations."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: Text = Field(min_length=1, max_length=200, examples=["Plans"])
    members: list[Handle] = Field(
        default_factory=list,
        max_length=100,
        description="Handles of existing users to add (422 naming any unknown "
        "one); the creator is always a member",
        examples=[["bob"]],
    )


class MemberIn(BaseModel):
    """Body of POST /v1/conversations/{conversation_id}/members."""

    model_config = ConfigDict(extra="forbid", strict=True)

    handle: Handle = Field(description="An existing user's handle (404 if none)")


class MemberOut(BaseModel):
    """A member of a conversation."""

    __record__: ClassVar[type] = MemberRecord

    handle: str = Field(examples=["bob"])
    display_name: str = Field(examples=["Bob"])
    joined_at: datetime = Field(examples=["2026-11-29T03:40:02.000000Z"])


class ConversationSummaryOut(BaseModel):
    """A conversation in a listing."""

    __record__: ClassVar[type] = ConversationRecord

    id: int = Field(examples=[1])
    title: str = Field(examples=["Plans"])
    created_by: str = Field(description="The creator's handle", examples=["ann"])
    created_at: datetime = Field(examples=["2026-11-29T03:40:02.000000Z"])
    last_message_at: datetime = Field(
        description="Latest message, or created_at",
        examples=["2026-11-29T03:41:10.120311Z"],
    )


class ConversationOut(ConversationSummaryOut):
    """A conversation with its members."""

    members: list[MemberOut]


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
        """Start a conversation with the given members; the caller is one."""
        me = caller(req)
        body = read_json(req, ConversationIn)
        found = self._users.by_handles(body.members)
        missing = [
            {"detail": f"no user with handle {handle!r}", "pointer": f"#/members/{i}"}
            for i, handle in enumerate(body.members)
            if handle not in found
        ]
        if missing:
            raise Problem(422, "unknown member handles", errors=missing)
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


class Members:
    """POST .../members and DELETE .../members/{handle}, for members only."""

    def __init__(self, conversations: ConversationStore) -> None:
        self._conversations = conversations

    @documented(
        auth="user",
        json=MemberIn,
        tags=["conversations"],
        resp=Response(HTTP_200=MemberOut, HTTP_201=MemberOut),
    )
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, conversation_id: int
    ) -> None:
        """Add a member: 201, or 200 when already one."""
        me = caller(req)
        body = read_json(req, MemberIn)
        member, added = self._conversations.add_member(
            me.user.id, conversation_id, body.handle
        )
        send(resp, MemberOut, member, falcon.HTTP_201 if added else falcon.HTTP_200)
        if added:
            resp.location = (
                f"/v1/conversations/{conversation_id}/members/{member.handle}"
            )

    @documented(auth="user", tags=["conversations"], resp=Response("HTTP_204"))
    def on_delete_item(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        conversation_id: int,
        handle: Handle,
    ) -> None:
        """Remove a member (yourself included): 204, or 404."""
        me = caller(req)
        self._conversations.remove_member(me.user.id, conversation_id, handle)
        resp.status = falcon.HTTP_204


def routes(context: Context) -> list[Route]:
    """A user's conversations and their members."""
    database = context.database
    conversations = Conversations(database.conversations, database.users)
    members = Members(database.conversations)
    return [
        ("/v1/conversations", conversations, None),
        (CONVERSATION, conversations, "item"),
        (f"{CONVERSATION}/members", members, None),
        (f"{CONVERSATION}/members/{{handle}}", members, "item"),
    ]
