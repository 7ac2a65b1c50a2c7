"""Bearer authentication: the admin token and users' API tokens.

Each responder declares who may call it (`@documented(auth=...)`):

- "user": a user's own API token; the responder reads `caller(req)`;
- "admin": the admin token (SERVICE_ADMIN_TOKEN); while none is set the
  route answers 404, exactly as an unknown one;
- "operator": the admin token when one is set, open otherwise
  (/v1/metadata, the operator's own data);
- None: anyone.

The middleware checks the declaration before the responder runs and,
for a writing request, before its write transaction begins: a request
with a wrong token is refused without ever waiting for the write lock.
A writing request's user token is confirmed once more inside the write
transaction, after the lock (confirm()): a token revoked while the
request waited for the lock writes nothing.

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

from db.domain.records import Caller
from db.domain.token_uses import TokenUses
from db.domain.users import Users
from service.openapi import Requirement
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


def caller(req: falcon.Request) -> Caller:
    """The authenticated user of a request whose responder declared auth="user"."""
    found: Caller = req.context.caller
    return found


class Authenticator:
    """Who is calling: the operator (admin token) or a user (API token)."""

    def __init__(
        self, users: Users, token_uses: TokenUses, admin_token: SecretStr | None
    ) -> None:
        self._users = users
        self._token_uses = token_uses
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

    def check(self, req: falcon.Request, requirement: Requirement) -> None:
        """Refuse the request unless it meets requirement (see the module).

        "user" looks the token up (a read: call inside the request's
        db_session, before any write) and sets req.context.caller.
        """
        if requirement is None:
            return
        if requirement == "user":
            req.context.caller = self._user(req)
        elif requirement == "admin":
            if self._admin_hash is None:
                raise Problem(404)  # exactly what an unknown route answers
            if not self._is_admin(req):
                raise unauthorized("this route needs the admin bearer token")
        elif self._admin_hash is not None and not self._is_admin(req):
            raise unauthorized("this route needs the admin bearer token")

    def confirm(self, req: falcon.Request, requirement: Requirement) -> None:
        """Inside the write transaction, after its lock: is the token still valid?

        Only user tokens can be revoked; the admin token is configuration.
        """
        if requirement == "user" and not self._users.holds_token(caller(req).token_id):
            raise unauthorized("the API token is unknown or revoked")

    def _user(self, req: falcon.Request) -> Caller:
        token = bearer(req)
        if token is None and req.context.get("query_token", False):
            # RFC 6750 2.3, for the one route that allows it (GET /v1/events):
            # a browser's EventSource cannot send an Authorization header.
            token = req.get_param("access_token") or None
        if token is None:
            raise unauthorized("send an API token as Authorization: Bearer <token>")
        digest = token_hash(token)
        found = self._users.caller(digest)
        # The lookup went through a unique index on the hash; confirm the
        # match in constant time all the same.
        if found is None or not hmac.compare_digest(found.token_hash, digest):
            raise unauthorized("the API token is unknown or revoked")
        self._token_uses.note(found)
        return found
