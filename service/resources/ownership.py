"""Who owns a conversation: the owner hands it over; the operator moderates.

PUT /v1/conversations/{id}/owner is the owner's; the admin routes let the
operator (SERVICE_ADMIN_TOKEN) add anyone to any conversation and remove
anyone, its owner included (ownership then passes on as when the owner
leaves). The rules live in db/domain/members.py.
"""

from __future__ import annotations

import falcon
from pydantic import BaseModel, ConfigDict, Field
from spectree import Response

from db.domain.members import Members as MemberStore
from service.auth import caller
from service.bodies import read_json
from service.openapi import Route, documented
from service.rendering import send
from service.resources import ID, Context
from service.resources.conversations import CONVERSATION, send_member
from service.schemas import ConversationOut, Handle, MemberIn, MemberOut, ProblemOut


class OwnerIn(BaseModel):
    """Body of PUT /v1/conversations/{conversation_id}/owner."""

    model_config = ConfigDict(extra="forbid", strict=True)

    handle: Handle = Field(description="A member, who becomes the owner")


MODERATED = f"/v1/admin/conversations/{{conversation_id:{ID}}}/members"


class Owner:
    """PUT /v1/conversations/{conversation_id}/owner: hand ownership over."""

    def __init__(self, members: MemberStore) -> None:
        self._members = members

    @documented(
        auth="user",
        json=OwnerIn,
        tags=["conversations"],
        resp=Response(HTTP_200=ConversationOut, HTTP_403=ProblemOut),
    )
    def on_put(
        self, req: falcon.Request, resp: falcon.Response, conversation_id: int
    ) -> None:
        """Make another member the owner (the owner only): 200 with the conversation."""
        me = caller(req)
        body = read_json(req, OwnerIn)
        record = self._members.hand_over(me.user.id, conversation_id, body.handle)
        send(resp, ConversationOut, record)


class Moderation:
    """The operator adds anyone to, or removes anyone from, any conversation."""

    def __init__(self, members: MemberStore) -> None:
        self._members = members

    @documented(
        auth="admin",
        json=MemberIn,
        tags=["admin"],
        resp=Response(HTTP_200=MemberOut, HTTP_201=MemberOut),
    )
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, conversation_id: int
    ) -> None:
        """Add a member: 201, 200 when already one; the owner when there is none."""
        body = read_json(req, MemberIn)
        member, added = self._members.add(None, conversation_id, body.handle)
        send_member(resp, conversation_id, member, added)

    @documented(auth="admin", tags=["admin"], resp=Response("HTTP_204"))
    def on_delete_item(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        conversation_id: int,
        handle: Handle,
    ) -> None:
        """Remove any member, the owner included (ownership passes on): 204."""
        self._members.remove(None, conversation_id, handle)
        resp.status = falcon.HTTP_204


def routes(context: Context) -> list[Route]:
    """Handing ownership over, and the operator's moderation."""
    members = context.database.members
    moderation = Moderation(members)
    return [
        (f"{CONVERSATION}/owner", Owner(members), None),
        (MODERATED, moderation, None),
        (f"{MODERATED}/{{handle}}", moderation, "item"),
    ]
