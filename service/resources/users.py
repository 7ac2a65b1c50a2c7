"""Users and API tokens (admin), and GET /v1/me (the token's user)."""

from __future__ import annotations

from typing import Any

import falcon
from spectree import Response

from db import UserRecord
from db.messaging import Messaging
from service.auth import Authenticator, new_token, token_hash
from service.bodies import read_json
from service.openapi import documented
from service.params import utc_iso
from service.schemas import ProblemOut, TokenOut, UserIn, UserOut

ADMIN_ERRORS = {"HTTP_401": ProblemOut, "HTTP_404": ProblemOut}


def user_out(user: UserRecord) -> dict[str, Any]:
    """The JSON of a user."""
    return {
        "id": user.id,
        "handle": user.handle,
        "display_name": user.display_name,
        "created_at": utc_iso(user.created_at),
    }


class Users:
    """POST /v1/users and POST /v1/users/{handle}/tokens (admin)."""

    def __init__(
        self, messaging: Messaging, auth: Authenticator, max_body_bytes: int
    ) -> None:
        self._messaging = messaging
        self._auth = auth
        self._max_body = max_body_bytes

    @documented(
        json=UserIn,
        tags=["admin"],
        resp=Response(
            HTTP_201=UserOut,
            HTTP_409=ProblemOut,
            HTTP_422=ProblemOut,
            **ADMIN_ERRORS,
        ),
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Create a user: 201, or 409 when the handle is taken."""
        self._auth.require_admin(req)
        body = read_json(req, UserIn, self._max_body)
        user = self._messaging.create_user(body.handle, body.display_name)
        resp.media = user_out(user)
        resp.status = falcon.HTTP_201

    @documented(
        tags=["admin"],
        resp=Response(HTTP_201=TokenOut, **ADMIN_ERRORS),
    )
    def on_post_tokens(
        self, req: falcon.Request, resp: falcon.Response, handle: str
    ) -> None:
        """Issue an API token for the user; the token is shown only here."""
        self._auth.require_admin(req)
        token = new_token()
        token_id = self._messaging.create_token(handle, token_hash(token))
        resp.media = {"id": token_id, "token": token}
        resp.status = falcon.HTTP_201
        resp.set_header("Cache-Control", "no-store")


class Tokens:
    """DELETE /v1/tokens/{token_id} (admin)."""

    def __init__(self, messaging: Messaging, auth: Authenticator) -> None:
        self._messaging = messaging
        self._auth = auth

    @documented(tags=["admin"], resp=Response("HTTP_204", **ADMIN_ERRORS))
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, token_id: int
    ) -> None:
        """Revoke a token at once: 204, or 404 when there is no such token."""
        self._auth.require_admin(req)
        self._messaging.revoke_token(token_id)
        resp.status = falcon.HTTP_204


class Me:
    """GET /v1/me: the user the bearer token belongs to."""

    def __init__(self, auth: Authenticator) -> None:
        self._auth = auth

    @documented(tags=["users"], resp=Response(HTTP_200=UserOut, HTTP_401=ProblemOut))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Return the calling user."""
        resp.media = user_out(self._auth.require_user(req).user)
