"""Messages in a user's conversations, and full-text search over them.

As in conversations.py, a conversation the caller is not a member of is
answered exactly as one that does not exist (404).
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import ClassVar

import falcon
from pydantic import BaseModel, ConfigDict, Field
from spectree import Response

from db.domain.messages import Messages as MessageStore
from db.domain.records import MessagePage, MessageRecord, SearchHit
from db.domain.search import (
    MAX_SEARCH_TERMS,
    SNIPPET_CLOSE,
    SNIPPET_OPEN,
    TooManyTermsError,
    UnmatchableWordError,
)
from db.domain.search import Search as SearchStore
from db.domain.search_quota import SearchQuota
from db.errors import BudgetExceededError
from service.auth import caller
from service.bodies import check_utf8_size, read_json
from service.fields import MAX_ID, Text
from service.openapi import Route, documented
from service.params import read_query
from service.problems import Problem
from service.rendering import send
from service.resources import ID, Context
from service.resources.conversations import CONVERSATION
from service.schemas import ProblemOut

MAX_BODY_BYTES = 32_768
BUDGET_RETRY_AFTER_SECONDS = 1


class MessageIn(BaseModel):
    """Body of POST /v1/conversations/{conversation_id}/messages."""

    model_config = ConfigDict(extra="forbid", strict=True)

    body: Text = Field(
        min_length=1,
        description="1 character to 32 KiB of UTF-8 (413 above); no control "
        "characters but tab, line feed and carriage return",
        examples=["Lunch on Friday?"],
    )


class MessageOut(BaseModel):
    """One message."""

    __record__: ClassVar[type] = MessageRecord

    id: int = Field(examples=[1])
    conversation_id: int = Field(examples=[1])
    author: str = Field(description="The author's handle", examples=["ann"])
    body: str = Field(examples=["Lunch on Friday?"])
    created_at: datetime = Field(examples=["2026-11-29T03:41:10.120311Z"])


class MessagePageOut(BaseModel):
    """A page of messages."""

    __record__: ClassVar[type] = MessagePage

    items: list[MessageOut]
    next: int | None = Field(
        description="Pass as ?before= (newest first) or ?after= (oldest first, when "
        "the page was asked with after) for the next page; null at the end",
        examples=[None],
    )


class MessagesQuery(BaseModel):
    """Query parameters of GET /v1/conversations/{conversation_id}/messages."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=200)
    before: int | None = Field(
        None,
        ge=1,
        le=MAX_ID,
        description="Newest first, ids below this. Not with after (422 when both)",
    )
    after: int | None = Field(
        None,
        ge=0,
        le=MAX_ID,
        description="Oldest first, ids above this. Not with before (422 when both)",
    )


class SearchQuery(BaseModel):
    """Query parameters of GET /v1/search."""

    model_config = ConfigDict(extra="forbid")

    q: Text = Field(
        min_length=1,
        max_length=200,
        description="Words to find, all of them (at most 16 words: 422 above; "
        "a word of punctuation alone: 422). docs/api.md, Search, says how words "
        "are folded and matched",
    )
    limit: int = Field(20, ge=1, le=50)


class SearchHitOut(BaseModel):
    """A message that matches, with a snippet of its body.

    The snippet is HTML: the text is escaped and the matched terms are
    wrapped in <mark>...</mark>, so it can be inserted into a page as is.
    """

    __record__: ClassVar[type] = SearchHit

    message_id: int = Field(examples=[1])
    conversation_id: int = Field(examples=[1])
    author: str = Field(examples=["ann"])
    created_at: datetime = Field(examples=["2026-11-29T03:41:10.120311Z"])
    snippet: str = Field(examples=["<mark>Lunch</mark> on Friday?"])


class SearchOut(BaseModel):
    """Search hits from my conversations, newest first."""

    items: list[SearchHitOut]


def _snippet(raw: str) -> str:
    """Escape the message text, then mark the matches up."""
    return (
        html.escape(raw)
        .replace(SNIPPET_OPEN, "<mark>")
        .replace(SNIPPET_CLOSE, "</mark>")
    )


class Messages:
    """POST/GET .../messages and DELETE .../messages/{message_id}."""

    def __init__(self, messages: MessageStore) -> None:
        self._messages = messages

    @documented(
        auth="user",
        json=MessageIn,
        tags=["messages"],
        resp=Response(HTTP_201=MessageOut),
    )
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, conversation_id: int
    ) -> None:
        """Post a message to one of my conversations."""
        me = caller(req)
        body = read_json(req, MessageIn)
        check_utf8_size(body.body, "body", MAX_BODY_BYTES)
        record = self._messages.post(me.user, conversation_id, body.body)
        send(resp, MessageOut, record, falcon.HTTP_201)
        resp.location = f"/v1/conversations/{conversation_id}/messages/{record.id}"

    @documented(
        auth="user",
        query=MessagesQuery,
        tags=["messages"],
        resp=Response(HTTP_200=MessagePageOut),
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
        send(resp, MessagePageOut, page)

    @documented(
        auth="user",
        tags=["messages"],
        resp=Response("HTTP_204", HTTP_403=ProblemOut),
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

    def __init__(
        self, search: SearchStore, quota: SearchQuota, budget: float, rate: int
    ) -> None:
        self._search = search
        self._quota = quota
        self._budget = budget
        self._rate = rate

    @documented(
        auth="user",
        query=SearchQuery,
        tags=["messages"],
        resp=Response(HTTP_200=SearchOut, HTTP_429=ProblemOut),
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Messages containing every word of ?q=, newest first."""
        me = caller(req)
        query = read_query(req, SearchQuery)
        wait = self._quota.take(me.token_id, self._rate)
        if wait is not None:
            raise Problem(
                429,
                f"this token may start {self._rate} searches a minute; "
                f"the next one in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        try:
            hits = self._search.messages(me.user.id, query.q, query.limit, self._budget)
        except UnmatchableWordError as ex:
            named = ", ".join(repr(word) for word in ex.words)
            raise Problem(
                422,
                f"q: nothing to search in {named} (no letter, digit or symbol)",
                errors=[
                    {"detail": f"{word!r} cannot match anything", "parameter": "q"}
                    for word in ex.words
                ],
            ) from ex
        except BudgetExceededError as ex:
            raise Problem(
                503,
                f"the search took more than {self._budget:g} s and was stopped; "
                "try fewer or rarer words",
                headers={"Retry-After": str(BUDGET_RETRY_AFTER_SECONDS)},
            ) from ex
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
        marked = [hit._replace(snippet=_snippet(hit.snippet)) for hit in hits]
        send(resp, SearchOut, {"items": marked})


def routes(context: Context) -> list[Route]:
    """Messages in a user's conversations, and search."""
    database = context.database
    messages = Messages(database.messages)
    return [
        (f"{CONVERSATION}/messages", messages, None),
        (f"{CONVERSATION}/messages/{{message_id:{ID}}}", messages, "item"),
        (
            "/v1/search",
            Search(
                database.search,
                database.search_quota,
                context.settings.search_budget,
                context.settings.search_rate,
            ),
            None,
        ),
    ]
