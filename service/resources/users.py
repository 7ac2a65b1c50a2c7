"""Users and API tokens (admin), and GET /v1/me (the token's user)."""

from __future__ import annotations

from typing import Any

import falcon
from spectree import Response

from db.domain.records import UserRecord
from db.domain.users import Users as UserStore
from service.auth import caller, new_token, token_hash
from service.bodies import read_json
from service.openapi import Route, documented
from service.params import check_handle, utc_iso
from service.resources import ID, Context
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

    def __init__(self, users: UserStore, max_body_bytes: int) -> None:
        self._users = users
        self._max_body = max_body_bytes

    @documented(
        auth="admin",
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
        body = read_json(req, UserIn, self._max_body)
        user = self._users.create(body.handle, body.display_name)
        resp.media = user_out(user)
        resp.status = falcon.HTTP_201

    @documented(
        auth="admin",
        tags=["admin"],
        resp=Response(HTTP_201=TokenOut, **ADMIN_ERRORS),
    )
    def on_post_tokens(
        self, req: falcon.Request, resp: falcon.Response, handle: str
    ) -> None:
        """Issue an API token for the user; the token is shown only here."""
        token = new_token()
        token_id = self._users.create_token(check_handle(handle), token_hash(token))
        resp.media = {"id": token_id, "token": token}
        resp.status = falcon.HTTP_201
        resp.set_header("Cache-Control", "no-store")


class Tokens:
    """DELETE /v1/tokens/{token_id} (admin)."""

    def __init__(self, users: UserStore) -> None:
        self._users = users

    @documented(auth="admin", tags=["admin"], resp=Response("HTTP_204", **ADMIN_ERRORS))
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, token_id: int
    ) -> None:
        """Revoke a token at once: 204, or 404 when there is no such token."""
        self._users.revoke_token(token_id)
        resp.status = falcon.HTTP_204


class Me:
    """GET /v1/me: the user the bearer token belongs to."""

    @documented(
        auth="user",
        tags=["users"],
        resp=Response(HTTP_200=UserOut, HTTP_401=ProblemOut),
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Return the calling user."""
        resp.media = user_out(caller(req).user)


def routes(context: Context) -> list[Route]:
    """Users and tokens (admin), and the caller's own user."""
    users = context.database.users
    admin = Users(users, context.max_body)
    return [
        ("/v1/users", admin, None),
        ("/v1/users/{handle}/tokens", admin, "tokens"),
        (f"/v1/tokens/{{token_id:{ID}}}", Tokens(users), None),
        ("/v1/me", Me(), None),
    ]
