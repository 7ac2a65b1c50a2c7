"""Obvious Pony: the same routes written the way Pony's documentation shows.

The yardstick for what the service's tuning buys. It uses the project's
own entities (db.domain.entities.define_entities) on the database the service's
migrations made, the service's PRAGMAs from an ``@db.on_connect`` hook
registered before ``bind()``, and nothing else of db/ or service/:

- a Falcon middleware enters one ``db_session`` per request in
  process_request and leaves it in process_response, committing when the
  request succeeded with a status below 400 and rolling back otherwise
  (``__exit__`` with an exception type: Pony rolls back only then);
- writing methods (POST, PUT, PATCH, DELETE) enter
  ``db_session(immediate=True)``: on SQLite Pony then takes its in-process
  write lock and runs BEGIN IMMEDIATE at the session's first query, so a
  read-modify-write cannot fail an optimistic check under load; reads run
  in Pony's default autocommit mode. This is the pattern
  ../shared/reference/pony-sqlite.md (sections 0 and 4) tested, and the
  ``immediate`` option of Pony's ``db_session`` API reference;
- resources use ``Entity.get``, ``entity.set``, ``entity.to_dict``, entity
  creation, ``Entity.exists``, relation attributes (``token.user``,
  ``message.author.handle``) and a generator ``select(...).order_by(...)``
  sliced to a page, and format datetimes with ``isoformat``.

No prefetch, no tuple selects, no raw SQL, no caching: no tuning at all.
Run it with ``python -m bench.obvious --db PATH --port N --threads N``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import falcon
from pony import orm

from bench.serving import serve
from db.domain.entities import define_entities

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def pragmas() -> tuple[str, ...]:
    """The service's connection PRAGMAs (db/engines/sqlite/connection.py)."""
    try:
        from db.engines.sqlite.connection import connection_pragmas
    except ImportError:  # moved by a rewrite: the same list, kept in bench
        from bench.baseline_schema import PRAGMAS

        return PRAGMAS
    return tuple(connection_pragmas())


def connect(path: Path) -> tuple[orm.Database, dict[str, Any]]:
    """Define the entities on a new Database, bind it to path and map it."""
    db = orm.Database()

    # Keyword form, before bind(): every connection Pony opens gets them.
    @db.on_connect(provider="sqlite")  # type: ignore[untyped-decorator]
    def _pragmas(_db: orm.Database, connection: Any) -> None:
        cursor = connection.cursor()
        for statement in pragmas():
            cursor.execute(statement)

    entities = define_entities(db)
    db.bind(provider="sqlite", filename=str(path.resolve()), create_db=False)
    db.generate_mapping(create_tables=False)
    return db, entities


def utc_now() -> datetime:
    """Now as naive UTC, which is what the entities store."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso(moment: datetime) -> str:
    """A stored naive UTC datetime as ISO 8601 with a Z, as the service answers."""
    return moment.isoformat(timespec="microseconds") + "Z"


class PonySession:
    """One db_session per request; immediate for writing methods."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Enter the session and keep the very object to exit it later."""
        session = orm.db_session(immediate=req.method in WRITE_METHODS)
        session.__enter__()
        req.context.pony_session = session

    def process_response(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        resource: Any,
        req_succeeded: bool,
    ) -> None:
        """Commit on success, roll back otherwise."""
        session = req.context.get("pony_session")
        if session is None:
            return
        req.context.pony_session = None
        if req_succeeded and resp.status_code < 400:
            session.__exit__(None, None, None)
        else:
            failed = RuntimeError("request failed")
            session.__exit__(RuntimeError, failed, None)


class Health:
    """GET /healthz: liveness, no query."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer that the process is up."""
        resp.media = {"status": "ok"}


class Ready:
    """GET /readyz: the database answers a query."""

    def __init__(self, entities: dict[str, Any]) -> None:
        self.AppMetadata = entities["AppMetadata"]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """200 once an entity query runs."""
        self.AppMetadata.select().exists()
        resp.media = {"status": "ready"}


class Metadata:
    """GET/PUT /v1/metadata/{key}."""

    def __init__(self, entities: dict[str, Any]) -> None:
        self.AppMetadata = entities["AppMetadata"]

    def _out(self, entry: Any) -> dict[str, Any]:
        out: dict[str, Any] = entry.to_dict()
        out["updated_at"] = iso(entry.updated_at)
        return out

    def on_get(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        """Return one entry or 404."""
        entry = self.AppMetadata.get(key=key)
        if entry is None:
            raise falcon.HTTPNotFound(description=f"no metadata key {key!r}")
        resp.media = self._out(entry)

    def on_put(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        """Create (201) or update (200) one entry."""
        body: Any = req.get_media()
        value = body.get("value") if isinstance(body, dict) else None
        if not isinstance(value, str):
            raise falcon.HTTPUnprocessableEntity(description="value must be a string")
        entry = self.AppMetadata.get(key=key)
        if entry is None:
            entry = self.AppMetadata(key=key, value=value, updated_at=utc_now())
            resp.status = falcon.HTTP_201
        else:
            entry.set(value=value, updated_at=utc_now())
        resp.media = self._out(entry)


class Messages:
    """POST/GET /v1/conversations/{cid}/messages, bearer token required."""

    def __init__(self, entities: dict[str, Any]) -> None:
        self.ApiToken = entities["ApiToken"]
        self.Conversation = entities["Conversation"]
        self.Membership = entities["Membership"]
        self.Message = entities["Message"]

    def _caller(self, req: falcon.Request) -> Any:
        header = req.get_header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise falcon.HTTPUnauthorized()
        digest = hashlib.sha256(token.strip().encode()).digest()
        found = self.ApiToken.get(token_hash=digest, revoked_at=None)
        if found is None:
            raise falcon.HTTPUnauthorized()
        return found.user

    def _conversation(self, user: Any, cid: int) -> Any:
        conversation = self.Conversation.get(id=cid)
        if conversation is None or not self.Membership.exists(
            conversation=conversation, user=user
        ):
            raise falcon.HTTPNotFound()
        return conversation

    def _out(self, message: Any) -> dict[str, Any]:
        return {
            "id": message.id,
            "conversation_id": message.conversation.id,
            "author": message.author.handle,
            "body": message.body,
            "created_at": iso(message.created_at),
        }

    def on_post(self, req: falcon.Request, resp: falcon.Response, cid: int) -> None:
        """Post a message (201) to a conversation the caller is in."""
        user = self._caller(req)
        body: Any = req.get_media()
        text = body.get("body") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text or len(text.encode()) > 32_768:
            raise falcon.HTTPUnprocessableEntity(description="body must be 1-32 KiB")
        conversation = self._conversation(user, cid)
        now = utc_now()
        message = self.Message(
            conversation=conversation, author=user, body=text, created_at=now
        )
        conversation.set(last_message_at=now)
        orm.flush()  # the INSERT runs now, so message.id is known
        resp.status = falcon.HTTP_201
        resp.media = self._out(message)

    def on_get(self, req: falcon.Request, resp: falcon.Response, cid: int) -> None:
        """The latest messages, newest first (?limit=, ?before=)."""
        user = self._caller(req)
        limit = req.get_param_as_int("limit", min_value=1, max_value=200) or 50
        before = req.get_param_as_int("before", min_value=1)
        conversation = self._conversation(user, cid)
        query = orm.select(m for m in self.Message if m.conversation == conversation)
        if before is not None:
            query = query.where(lambda m: m.id < before)
        page = query.order_by(orm.desc(self.Message.id))[: limit + 1]
        items = [self._out(m) for m in page[:limit]]
        more = len(page) > limit
        resp.media = {"items": items, "next": items[-1]["id"] if more else None}


def create_app(path: Path) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the obvious-Pony WSGI app on a migrated database at path."""
    return open_app(path)[0]


def open_app(
    path: Path,
) -> tuple[falcon.App[falcon.Request, falcon.Response], orm.Database]:
    """The app and its Database (db.disconnect() closes this thread's connection)."""
    db, entities = connect(path)
    app = falcon.App(middleware=[PonySession()])
    app.add_route("/healthz", Health())
    app.add_route("/readyz", Ready(entities))
    app.add_route("/v1/metadata/{key}", Metadata(entities))
    app.add_route("/v1/conversations/{cid:int}/messages", Messages(entities))
    return app, db


if __name__ == "__main__":
    raise SystemExit(serve("python -m bench.obvious", create_app))
