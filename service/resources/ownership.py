"""Who owns a conversation: the owner hands it over; the operator moderates.

PUT /v1/conversations/{id}/owner is the owner's; the admin routes let the
operator (SERVICE_ADMIN_TOKEN) add anyone to any conversation and remove
anyone, its owner included (ownership then passes on as when the owner
leaves). The rules live in db/members.py.
"""

from __future__ import annotations

import falcon
from spectree import Response

from db.members import Members as MemberStore
from service.auth import caller
from service.bodies import read_json
from service.openapi import Route, documented
from service.params import check_handle
from service.resources import ID, Context
from service.resources.conversations import (
    CONVERSATION,
    WRITE_ERRORS,
    conversation_out,
    member_out,
)
from service.schemas import ConversationOut, MemberIn, MemberOut, OwnerIn, ProblemOut

MODERATED = f"/v1/admin/conversations/{{conversation_id:{ID}}}/members"


class Owner:
    """PUT /v1/conversations/{conversation_id}/owner: hand ownership over."""

    def __init__(self, members: MemberStore, max_body_bytes: int) -> None:
        self._members = members
        self._max_body = max_body_bytes

    @documented(
        auth="user",
        json=OwnerIn,
        tags=["conversations"],
        resp=Response(
            HTTP_200=ConversationOut,
            HTTP_403=ProblemOut,
            HTTP_404=ProblemOut,
            **WRITE_ERRORS,
        ),
    )
    def on_put(
        self, req: falcon.Request, resp: falcon.Response, conversation_id: int
    ) -> None:
        """Make another member the owner (the owner only): 200 with the conversation."""
        me = caller(req)
        body = read_json(req, OwnerIn, self._max_body)
        record = self._members.hand_over(me.user.id, conversation_id, body.handle)
        resp.media = conversation_out(record, members=True)


class Moderation:
    """The operator adds anyone to, or removes anyone from, any conversation."""

    def __init__(self, members: MemberStore, max_body_bytes: int) -> None:
        self._members = members
        self._max_body = max_body_bytes

    @documented(
        auth="admin",
        json=MemberIn,
        tags=["admin"],
        resp=Response(HTTP_200=MemberOut, HTTP_201=MemberOut, **WRITE_ERRORS),
    )
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, conversation_id: int
    ) -> None:
        """Add a member: 201, 200 when already one; the owner when there is none."""
        body = read_json(req, MemberIn, self._max_body)
        member, added = self._members.add(None, conversation_id, body.handle)
        resp.media = member_out(member)
        resp.status = falcon.HTTP_201 if added else falcon.HTTP_200

    @documented(auth="admin", tags=["admin"], resp=Response("HTTP_204"))
    def on_delete_item(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        conversation_id: int,
        handle: str,
    ) -> None:
        """Remove any member, the owner included (ownership passes on): 204."""
        self._members.remove(None, conversation_id, check_handle(handle))
        resp.status = falcon.HTTP_204


def routes(context: Context) -> list[Route]:
    """Handing ownership over, and the operator's moderation."""
    members, max_body = context.database.members, context.max_body
    moderation = Moderation(members, max_body)
    return [
        (f"{CONVERSATION}/owner", Owner(members, max_body), None),
        (MODERATED, moderation, None),
        (f"{MODERATED}/{{handle}}", moderation, "item"),
    ]
