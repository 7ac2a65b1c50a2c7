"""Units of work: a Pony db_session entered and left by the caller.

The HTTP middleware enters one per request and leaves it when the response
is ready; errors Pony raises on commit are translated to db.errors here so
callers above db/ never see Pony's exception types.
"""

from __future__ import annotations

from pony import orm
from pony.orm import dbapiprovider

from db.errors import BusyError, ConflictError

# db_session objects only hold configuration (state is thread-local), so
# two shared instances serve every thread and avoid per-request set-up.
_READ = orm.db_session
_WRITE = orm.db_session(immediate=True)


class RequestFailedError(Exception):
    """Passed to db_session.__exit__ so that it rolls back."""


_FAILED = RequestFailedError("request failed")


def translate(ex: BaseException) -> BaseException:
    """Map a Pony/SQLite exception to a db.errors one (or return it unchanged)."""
    text = str(ex)
    if "database is locked" in text or "database table is locked" in text:
        return BusyError("the database stayed locked by another writer")
    if isinstance(ex, orm.TransactionIntegrityError | dbapiprovider.IntegrityError):
        return ConflictError("the change conflicts with stored data")
    return ex


class Session:
    """One db_session; enter() now, finish(succeeded) exactly once later."""

    __slots__ = ("_context",)

    def __init__(self, *, write: bool) -> None:
        self._context = _WRITE if write else _READ

    def enter(self) -> None:
        """Start the session on the calling thread."""
        try:
            self._context.__enter__()
        except Exception as ex:
            raise translate(ex) from ex

    def finish(self, succeeded: bool) -> None:
        """Commit when succeeded, roll back otherwise; the session ends either way."""
        if not succeeded:
            self._context.__exit__(RequestFailedError, _FAILED, None)
            return
        try:
            self._context.__exit__(None, None, None)
        except Exception as ex:
            # Pony rolled back and cleared the thread's state before raising.
            translated = translate(ex)
            if translated is ex:
                raise
            raise translated from ex


def in_session() -> bool:
    """True while the calling thread is inside a db_session (leak detector)."""
    return orm.core.local.db_session is not None


# What Pony raises when SQLite refuses: the HTTP layer registers one handler
# for these and answers with whatever translate() makes of them.
DRIVER_ERRORS: tuple[type[Exception], ...] = (
    orm.core.TransactionError,
    dbapiprovider.DBException,
)
