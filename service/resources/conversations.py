"""Conversations, their members and messages, and search: a user's own API.

Every responder first resolves the bearer token to a user (401 otherwise);
the db layer answers a conversation the user is not a member of exactly as
one that does not exist (404), so nothing reveals it.
"""

from __future__ import annotations

import html
from typing import Any

import falcon
from spectree import Response

from db import ConversationRecord, MemberRecord, MessageRecord
from db.conversations import Conversations as ConversationStore
from db.dialects import SNIPPET_CLOSE, SNIPPET_OPEN
from db.messages import Messages as MessageStore
from db.search import MAX_SEARCH_TERMS, search_terms
from db.search import Search as SearchStore
from db.users import Users as UserStore
from service.auth import caller
from service.bodies import read_json
from service.openapi import Route, documented
from service.params import check_handle, read_query, utc_iso
from service.problems import Problem
from service.resources import ID, Context
from service.schemas import (
    MAX_BODY_BYTES,
    ConversationIn,
    ConversationOut,
    ConversationPageOut,
    ConversationsQuery,
    MemberIn,
    MemberOut,
    MessageIn,
    MessageOut,
    MessagePageOut,
    MessagesQuery,
    ProblemOut,
    SearchOut,
    SearchQuery,
)

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


def _message(record: MessageRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "conversation_id": record.conversation_id,
        "author": record.author,
        "body": record.body,
        "created_at": utc_iso(record.created_at),
    }


def _snippet(raw: str) -> str:
    """Escape the message text, then mark the matches up."""
    return (
        html.escape(raw)
        .replace(SNIPPET_OPEN, "<mark>")
        .replace(SNIPPET_CLOSE, "</mark>")
    )


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


class Messages:
    """POST/GET .../messages and DELETE .../messages/{message_id}."""

    def __init__(self, messages: MessageStore, max_body_bytes: int) -> None:
        self._messages = messages
        self._max_body = max_body_bytes

    @documented(
        auth="user",
        json=MessageIn,
        tags=["messages"],
        resp=Response(HTTP_201=MessageOut, HTTP_404=ProblemOut, **WRITE_ERRORS),
    )
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, conversation_id: int
    ) -> None:
        """Post a message to one of my conversations."""
        me = caller(req)
        body = read_json(req, MessageIn, self._max_body)
        try:
            size = len(body.body.encode("utf-8"))
        except UnicodeEncodeError as ex:
            raise Problem(
                422,
                "body must be valid Unicode text (it holds a lone surrogate)",
                errors=[{"detail": str(ex.reason), "pointer": "#/body"}],
            ) from ex
        if size > MAX_BODY_BYTES:
            raise Problem(
                413, f"body is {size} bytes of UTF-8; the limit is {MAX_BODY_BYTES}"
            )
        record = self._messages.post(me.user, conversation_id, body.body)
        resp.media = _message(record)
        resp.status = falcon.HTTP_201

    @documented(
        auth="user",
        query=MessagesQuery,
        tags=["messages"],
        resp=Response(
            HTTP_200=MessagePageOut,
            HTTP_404=ProblemOut,
            HTTP_422=ProblemOut,
            **AUTH_ERRORS,
        ),
    )
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, conversation_id: int
    ) -> None:
        """Messages newest first (?before=) or oldest first (?after=)."""
        me = caller(req)
        query = read_query(req, MessagesQuery)
        if query.before is not None and query.after is not None:
            raise Problem(
                422,
                "give before or after, not both",
                errors=[{"detail": "conflicts with after", "parameter": "before"}],
            )
        page = self._messages.page(
            me.user.id,
            conversation_id,
            query.limit,
            before=query.before,
            after=query.after,
        )
        resp.media = {"items": [_message(m) for m in page.items], "next": page.next}

    @documented(
        auth="user",
        tags=["messages"],
        resp=Response(
            "HTTP_204", HTTP_403=ProblemOut, HTTP_404=ProblemOut, **AUTH_ERRORS
        ),
    )
    def on_delete_item(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        conversation_id: int,
        message_id: int,
    ) -> None:
        """Delete my own message: 204; someone else's: 403."""
        me = caller(req)
        self._messages.delete(me.user.id, conversation_id, message_id)
        resp.status = falcon.HTTP_204


class Search:
    """GET /v1/search: full-text search over my conversations' messages."""

    def __init__(self, search: SearchStore) -> None:
        self._search = search

    @documented(
        auth="user",
        query=SearchQuery,
        tags=["messages"],
        resp=Response(HTTP_200=SearchOut, HTTP_422=ProblemOut, **AUTH_ERRORS),
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Messages containing every word of ?q=, best match first."""
        me = caller(req)
        query = read_query(req, SearchQuery)
        words = len(search_terms(query.q))
        if words > MAX_SEARCH_TERMS:
            # Refused rather than cut: every word must match, so dropping
            # some would answer a different question than the one asked.
            raise Problem(
                422,
                f"q has {words} words; search takes at most {MAX_SEARCH_TERMS}",
                errors=[
                    {
                        "detail": f"at most {MAX_SEARCH_TERMS} words",
                        "parameter": "q",
                    }
                ],
            )
        hits = self._search.messages(me.user.id, query.q, query.limit)
        resp.media = {
            "items": [
                {
                    "message_id": hit.message_id,
                    "conversation_id": hit.conversation_id,
                    "author": hit.author,
                    "created_at": utc_iso(hit.created_at),
                    "snippet": _snippet(hit.snippet),
                }
                for hit in hits
            ]
        }


def routes(context: Context) -> list[Route]:
    """A user's conversations, their members and messages, and search."""
    database, max_body = context.database, context.max_body
    conversations = Conversations(database.conversations, database.users, max_body)
    members = Members(database.conversations, max_body)
    messages = Messages(database.messages, max_body)
    one = f"/v1/conversations/{{conversation_id:{ID}}}"
    return [
        ("/v1/conversations", conversations, None),
        (one, conversations, "item"),
        (f"{one}/members", members, None),
        (f"{one}/members/{{handle}}", members, "item"),
        (f"{one}/messages", messages, None),
        (f"{one}/messages/{{message_id:{ID}}}", messages, "item"),
        ("/v1/search", Search(database.search), None),
    ]
