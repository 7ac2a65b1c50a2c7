"""Bearer authentication: the admin token and users' API tokens.

Tokens are 32 random bytes (secrets.token_urlsafe), shown once. Only their
SHA-256 reaches db/: for a 256-bit random secret a fast hash is enough (no
dictionary or brute force can find a preimage, so a slow password KDF buys
nothing), and a deterministic hash lets the database find the token through
a unique index. Hashing here keeps the plain token out of db/ entirely.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import falcon
from pydantic import SecretStr

from db import Caller
from db.messaging import Messaging
from service.problems import Problem

TOKEN_PREFIX = "sft_"  # noqa: S105 - a prefix, recognisable in logs and scanners
CHALLENGE = 'Bearer realm="service"'


def new_token() -> str:
    """A fresh API token: a prefix and 32 random bytes, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """What the database stores and looks up for a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def bearer(req: falcon.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    header = req.get_header("Authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def unauthorized(detail: str) -> Problem:
    """A 401 problem with the challenge RFC 6750 asks for."""
    return Problem(401, detail, headers={"WWW-Authenticate": CHALLENGE})


class Authenticator:
    """Who is calling: the operator (admin token) or a user (API token)."""

    def __init__(self, messaging: Messaging, admin_token: SecretStr | None) -> None:
        self._messaging = messaging
        self._admin_hash = (
            token_hash(admin_token.get_secret_value()) if admin_token else None
        )

    @property
    def admin_enabled(self) -> bool:
        """True when SERVICE_ADMIN_TOKEN is set."""
        return self._admin_hash is not None

    def _is_admin(self, req: falcon.Request) -> bool:
        token = bearer(req)
        if token is None or self._admin_hash is None:
            return False
        # Equal-length digests compared in constant time.
        return hmac.compare_digest(token_hash(token), self._admin_hash)

    def require_admin(self, req: falcon.Request) -> None:
        """Admin routes: 404 while no admin token is configured, else 401 unless given."""
        if self._admin_hash is None:
            raise Problem(404)  # exactly what an unknown route answers
        if not self._is_admin(req):
            raise unauthorized("this route needs the admin bearer token")

    def guard_operator_data(self, req: falcon.Request) -> None:
        """Operator routes (/v1/metadata): open without an admin token, else guarded."""
        if self._admin_hash is not None and not self._is_admin(req):
            raise unauthorized("this route needs the admin bearer token")

    def require_user(self, req: falcon.Request) -> Caller:
        """The user whose unrevoked API token the request carries; 401 otherwise."""
        token = bearer(req)
        if token is None:
            raise unauthorized("send an API token as Authorization: Bearer <token>")
        digest = token_hash(token)
        caller = self._messaging.caller_for_token(digest)
        # The lookup went through a unique index on the hash; confirm the
        # match in constant time all the same.
        if caller is None or not hmac.compare_digest(caller.token_hash, digest):
            raise unauthorized("the API token is unknown or revoked")
        self._messaging.touch_token(caller)
        return caller
