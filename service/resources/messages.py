"""Messages in a user's conversations, and full-text search over them.

As in conversations.py, a conversation the caller is not a member of is
answered exactly as one that does not exist (404).
"""

from __future__ import annotations

import html
from typing import Any

import falcon
from spectree import Response

from db.domain.messages import Messages as MessageStore
from db.domain.records import MessageRecord
from db.domain.search import (
    MAX_SEARCH_TERMS,
    SNIPPET_CLOSE,
    SNIPPET_OPEN,
    TooManyTermsError,
)
from db.domain.search import Search as SearchStore
from service.auth import caller
from service.bodies import check_utf8_size, read_json
from service.openapi import Route, documented
from service.params import read_query, utc_iso
from service.problems import Problem
from service.resources import ID, Context
from service.resources.conversations import AUTH_ERRORS, CONVERSATION, WRITE_ERRORS
from service.schemas import (
    MAX_BODY_BYTES,
    MessageIn,
    MessageOut,
    MessagePageOut,
    MessagesQuery,
    ProblemOut,
    SearchOut,
    SearchQuery,
)


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
        check_utf8_size(body.body, "body", MAX_BODY_BYTES)
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
        try:
            hits = self._search.messages(me.user.id, query.q, query.limit)
        except TooManyTermsError as ex:
            raise Problem(
                422,
                f"q has {ex.count} words; search takes at most {MAX_SEARCH_TERMS}",
                errors=[
                    {
                        "detail": f"at most {MAX_SEARCH_TERMS} words",
                        "parameter": "q",
                    }
                ],
            ) from ex
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
    """Messages in a user's conversations, and search."""
    database = context.database
    messages = Messages(database.messages, context.max_body)
    return [
        (f"{CONVERSATION}/messages", messages, None),
        (f"{CONVERSATION}/messages/{{message_id:{ID}}}", messages, "item"),
        ("/v1/search", Search(database.search), None),
    ]
