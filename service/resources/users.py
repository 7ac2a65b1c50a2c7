"""Users and API tokens (admin), and GET /v1/me (the token's user)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import falcon
from pydantic import BaseModel, ConfigDict, Field
from spectree import Response

from db.domain.records import UserRecord
from db.domain.users import Users as UserStore
from db.errors import NotFoundError
from service.auth import caller, new_token, token_hash
from service.bodies import read_json
from service.fields import Text
from service.openapi import Route, documented
from service.rendering import send, send_one
from service.resources import ID, Context
from service.schemas import Handle


class UserIn(BaseModel):
    """Body of POST /v1/users."""

    model_config = ConfigDict(extra="forbid", strict=True)

    handle: Handle = Field(
        description="3-32 of a-z, 0-9 and _; unique (409 when taken)",
        examples=["ann"],
    )
    display_name: Text = Field(min_length=1, max_length=100, examples=["Ann"])


class UserOut(BaseModel):
    """A user."""

    __record__: ClassVar[type] = UserRecord

    id: int = Field(examples=[1])
    handle: str = Field(examples=["ann"])
    display_name: str = Field(examples=["Ann"])
    created_at: datetime = Field(
        description="ISO 8601 in UTC", examples=["2026-11-29T03:40:01.120311Z"]
    )


class TokenOut(BaseModel):
    """A new API token: shown here once, never again."""

    id: int = Field(examples=[1])
    token: str = Field(
        description="Send as Authorization: Bearer <token>",
        examples=["sft_Vq0kR2N9yJm4pX7sLd1cA8eHfGtWzUbQ3oIvE6nKjY5"],
    )


class Users:
    """POST /v1/users, GET /v1/users/{handle}, POST .../{handle}/tokens (admin)."""

    def __init__(self, users: UserStore) -> None:
        self._users = users

    @documented(
        auth="admin", json=UserIn, tags=["admin"], resp=Response(HTTP_201=UserOut)
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Create a user: 201, or 409 when the handle is taken."""
        body = read_json(req, UserIn)
        user = self._users.create(body.handle, body.display_name)
        send(resp, UserOut, user, falcon.HTTP_201)
        resp.location = f"/v1/users/{user.handle}"

    @documented(
        auth="admin", etag=True, tags=["admin"], resp=Response(HTTP_200=UserOut)
    )
    def on_get_item(
        self, req: falcon.Request, resp: falcon.Response, handle: Handle
    ) -> None:
        """One user, or 404."""
        found = self._users.by_handles([handle]).get(handle)
        if found is None:
            raise NotFoundError(f"no user with handle {handle!r}")
        send_one(req, resp, UserOut, found)

    @documented(auth="admin", tags=["admin"], resp=Response(HTTP_201=TokenOut))
    def on_post_tokens(
        self, req: falcon.Request, resp: falcon.Response, handle: Handle
    ) -> None:
        """Issue an API token for the user; the token is shown only here."""
        token = new_token()
        token_id = self._users.create_token(handle, token_hash(token))
        send(resp, TokenOut, {"id": token_id, "token": token}, falcon.HTTP_201)
        resp.location = f"/v1/tokens/{token_id}"
        resp.set_header("Cache-Control", "no-store")


class Tokens:
    """DELETE /v1/tokens/{token_id} (admin)."""

    def __init__(self, users: UserStore) -> None:
        self._users = users

    @documented(auth="admin", tags=["admin"], resp=Response("HTTP_204"))
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, token_id: int
    ) -> None:
        """Revoke a token at once: 204, or 404 when there is no such token."""
        self._users.revoke_token(token_id)
        resp.status = falcon.HTTP_204


class Me:
    """GET /v1/me: the user the bearer token belongs to."""

    @documented(auth="user", etag=True, tags=["users"], resp=Response(HTTP_200=UserOut))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Return the calling user."""
        send_one(req, resp, UserOut, caller(req).user)


def routes(context: Context) -> list[Route]:
    """Users and tokens (admin), and the caller's own user."""
    users = context.database.users
    admin = Users(users)
    return [
        ("/v1/users", admin, None),
        ("/v1/users/{handle}", admin, "item"),
        ("/v1/users/{handle}/tokens", admin, "tokens"),
        (f"/v1/tokens/{{token_id:{ID}}}", Tokens(users), None),
        ("/v1/me", Me(), None),
    ]
