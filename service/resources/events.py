"""Live delivery: GET /v1/events, a resumable stream of my conversations' events.

Authenticated like every user call (or, for a browser's EventSource,
which cannot send headers, with ?access_token=). The responder reserves
a stream (429 past the token's limit) and hands the connection over to
the event thread (service/events/); Last-Event-ID (the header, or
?last_event_id=) resumes right after that event. docs/api.md, "Live
delivery", is the user's guide; docs/events.md says how it is built.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import falcon
import orjson
from pydantic import BaseModel, ConfigDict, Field
from spectree import Response

from db.domain.events import plain_json
from db.domain.records import DeletedMessage, MemberChange, OwnerChange
from service.auth import caller
from service.events.hub import Hub, StreamRefusedError
from service.fields import MAX_ID
from service.handoff import DETACHABLE, HANDOFF
from service.openapi import Route, documented
from service.params import read_query
from service.problems import Problem
from service.rendering import renderer
from service.resources import Context
from service.resources.messages import MessageOut
from service.schemas import ConversationOut, MemberOut, ProblemOut

EVENT_STREAM = "text/event-stream"
RETRY_AFTER_SECONDS = 5


class MessageDeletedOut(BaseModel):
    """Data of message.deleted."""

    __record__: ClassVar[type] = DeletedMessage

    id: int = Field(examples=[7])
    conversation_id: int = Field(examples=[1])


class MemberChangeOut(BaseModel):
    """Data of member.added and member.removed."""

    __record__: ClassVar[type] = MemberChange

    conversation_id: int = Field(examples=[1])
    member: MemberOut
    by: str | None = Field(
        description="Who did it: a handle (the member's own when they left), or "
        "null for the operator",
        examples=["ann"],
    )


class OwnerChangeOut(BaseModel):
    """Data of owner.changed."""

    __record__: ClassVar[type] = OwnerChange

    conversation_id: int = Field(examples=[1])
    owner: str | None = Field(
        description="The new owner's handle; null once nobody is left",
        examples=["bob"],
    )


class ResetOut(BaseModel):
    """Data of reset: the stream could not resume; refetch, then go on from here."""

    reason: Literal["expired", "unknown"] = Field(
        description="expired: past the retention window; unknown: an id this "
        "database never issued",
        examples=["expired"],
    )
    last_event_id: str | None = Field(
        description="The id the client sent", examples=["12"]
    )


# Every event type a stream sends, and the model of its data.
EVENT_TYPES: dict[str, type[BaseModel]] = {
    "conversation.created": ConversationOut,
    "message.posted": MessageOut,
    "message.deleted": MessageDeletedOut,
    "member.added": MemberChangeOut,
    "member.removed": MemberChangeOut,
    "owner.changed": OwnerChangeOut,
    "reset": ResetOut,
}


def encode(kind: str, payload: Any) -> str:
    """An event's data as its model renders it (what the REST answers send)."""
    model = EVENT_TYPES.get(kind)
    if model is None:
        return plain_json(kind, payload)  # not delivered (token.revoked)
    return orjson.dumps(renderer(model)(payload)).decode()


class EventsQuery(BaseModel):
    """Query parameters of GET /v1/events."""

    model_config = ConfigDict(extra="forbid")

    last_event_id: int | None = Field(
        None,
        ge=0,
        le=MAX_ID,
        description="Resume right after this event, for clients that cannot send "
        "the Last-Event-ID header (which wins when both are sent)",
    )
    access_token: str | None = Field(
        None,
        min_length=1,
        max_length=512,
        description="The API token, for clients that cannot send an Authorization "
        "header (a browser's EventSource; RFC 6750, 2.3). The header is better: "
        "proxies may log URLs",
    )


class Events:
    """GET /v1/events: the stream of what happens in my conversations."""

    # ?access_token= authenticates here (service.auth): EventSource sends no headers.
    query_token = True

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    @documented(
        auth="user",
        query=EventsQuery,
        tags=["events"],
        stream=EVENT_TYPES,
        resp=Response("HTTP_200", HTTP_429=ProblemOut, HTTP_501=ProblemOut),
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Open a stream of my conversations' events (Server-Sent Events)."""
        me = caller(req)
        query = read_query(req, EventsQuery)
        header = req.get_header("Last-Event-ID")
        if header is not None and header.strip():
            last: str | None = header.strip()[:64]
        elif query.last_event_id is not None:
            last = str(query.last_event_id)
        else:
            last = None
        resp.content_type = EVENT_STREAM
        resp.set_header("Cache-Control", "no-store")
        resp.set_header("X-Accel-Buffering", "no")  # nginx: pass each event on
        if req.method == "HEAD":
            return
        if not req.env.get(DETACHABLE):
            raise Problem(
                501,
                "event streams are served by `python -m service serve` (waitress "
                "with the service's adapter), not by this WSGI server",
            )
        try:
            ticket = self._hub.reserve(me, last, req.context.request_id)
        except StreamRefusedError as ex:
            raise Problem(
                ex.status, str(ex), headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
            ) from ex
        req.env[HANDOFF] = ticket
        resp.stream = iter(())  # no body here: the event thread writes it


def routes(context: Context) -> list[Route]:
    """The event stream."""
    hub = context.hub or Hub(context.database, context.settings)
    context.database.events.encode = encode
    return [("/v1/events", Events(hub), None)]
