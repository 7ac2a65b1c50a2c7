"""Users and their API tokens, through the User and ApiToken entities."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pony import orm

from db.domain.events import Events
from db.domain.records import Caller, UserRecord
from db.domain.timestamps import aware
from db.engines.base.operations import Dialect
from db.errors import ConflictError, NotFoundError


def user_record(user: Any) -> UserRecord:
    """The record of a User entity."""
    return UserRecord(user.id, user.handle, user.display_name, aware(user.created_at))


class Users:
    """Create and find users, issue, revoke and resolve tokens; records only."""

    def __init__(
        self,
        orm_db: orm.Database,
        entities: dict[str, Any],
        dialect: Dialect,
        events: Events,
    ) -> None:
        self._db = orm_db
        self._events = events
        self._user = entities["User"]
        self._token = entities["ApiToken"]
        self._still_valid = (
            "SELECT 1 FROM api_tokens WHERE id = $token_id AND revoked_at IS NULL"
            + dialect.guard_lock
        )
        self._dialect = dialect

    def create(self, handle: str, display_name: str) -> UserRecord:
        """Add a user; ConflictError when the handle is taken."""
        taken = ConflictError(f"handle {handle!r} is taken")
        if self._user.exists(handle=handle):
            raise taken
        user = self._user(
            handle=handle,
            display_name=display_name,
            created_at=self._dialect.now(self._db),
        )
        try:
            user.flush()  # the id, and a concurrent taker of the handle, now
        except orm.TransactionIntegrityError as ex:
            raise taken from ex
        return user_record(user)

    def by_handles(self, handles: Iterable[str]) -> dict[str, UserRecord]:
        """The users with these handles (unknown handles are left out)."""
        wanted = sorted(set(handles))
        if not wanted:
            return {}
        users = orm.select(u for u in self._user if u.handle in wanted)
        return {u.handle: user_record(u) for u in users}

    def create_token(self, handle: str, token_hash: bytes) -> int:
        """Store a token hash for the user; returns the token id."""
        user = self._user.get(handle=handle)
        if user is None:
            raise NotFoundError(f"no user with handle {handle!r}")
        token = self._token(
            user=user, token_hash=token_hash, created_at=self._dialect.now(self._db)
        )
        token.flush()
        return int(token.id)

    def revoke_token(self, token_id: int) -> None:
        """Revoke a token (again is fine); NotFoundError when it never existed.

        The row is locked FOR UPDATE: a write by this token that is under
        way holds it (holds_token) and commits first; one that is not yet
        waits, then finds the token revoked. So the 204 is final.
        """
        token = self._token.get_for_update(id=token_id)
        if token is None:
            raise NotFoundError(f"no token {token_id}")
        if token.revoked_at is None:
            token.revoked_at = self._dialect.now(self._db)
            self._events.token_revoked(token_id)  # ends its streams, everywhere

    def holds_token(self, token_id: int) -> bool:
        """True while the token is unrevoked; call after the write lock.

        A write authenticated with caller() asks again once its
        transaction holds the write lock: a revocation that committed
        meanwhile refuses it. On PostgreSQL the row is read FOR KEY
        SHARE, so a revocation under way (FOR UPDATE) is waited for, and
        one that comes later waits for this transaction. One primary-key
        lookup.
        """
        return bool(self._db.select(self._still_valid, {"token_id": token_id}))

    def caller(self, token_hash: bytes) -> Caller | None:
        """The user of an unrevoked token with this hash, or None.

        Every authenticated request asks this, before its write
        transaction begins: a read, never a write (a write confirms it
        with holds_token() after its lock). One raw row
        (db.select) rather than the two entities, whose loading costs Pony
        three times the query (measured: 200 us against 69 us per lookup).
        """
        rows = self._db.select(
            "SELECT t.id, t.token_hash, t.last_used_at, "
            "u.id, u.handle, u.display_name, u.created_at "
            "FROM api_tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.token_hash = $token_hash AND t.revoked_at IS NULL",
            {"token_hash": token_hash},
        )
        if not rows:
            return None
        token_id, stored_hash, last_used, user_id, handle, name, created = rows[0]
        timestamp = self._dialect.timestamp
        return Caller(
            UserRecord(user_id, handle, name, timestamp(created)),
            int(token_id),
            bytes(stored_hash),
            timestamp(last_used) if last_used is not None else None,
        )
