"""Bare baseline: Falcon 4 + waitress + stdlib sqlite3, no ORM, no middleware.

It serves the same routes and JSON shapes as the service, on the same table,
with the same pragmas and thread count, written the obvious efficient way:
one connection per worker thread, one transaction per request, prepared
statements cached by sqlite3, and writers queued on an in-process lock (as
Pony does) so they wait on each other instead of sleeping in SQLite's busy
handler.

Run it with ``python -m bench.baseline --db PATH --port N --threads N``.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import falcon

from bench.baseline_schema import MESSAGING_SCHEMA, PRAGMAS, SCHEMA
from bench.serving import serve

_SELECT = "SELECT key, value, updated_at FROM app_metadata WHERE key = ?"
_UPDATE = "UPDATE app_metadata SET value = ?, updated_at = ? WHERE key = ?"
_INSERT = "INSERT INTO app_metadata (key, value, updated_at) VALUES (?, ?, ?)"


_CALLER = (
    "SELECT u.id, u.handle FROM api_tokens t JOIN users u ON u.id = t.user_id "
    "WHERE t.token_hash = ? AND t.revoked_at IS NULL"
)
_IS_MEMBER = "SELECT 1 FROM memberships WHERE conversation_id = ? AND user_id = ?"
_POST = (
    "INSERT INTO messages (conversation_id, author_id, body, created_at) "
    "SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM memberships "
    "WHERE conversation_id = ? AND user_id = ?)"
)
_BUMP = "UPDATE conversations SET last_message_at = ? WHERE id = ?"
_LATEST = (
    "SELECT m.id, u.handle, m.body, m.created_at FROM messages m "
    "JOIN users u ON u.id = m.author_id "
    "WHERE m.conversation_id = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?"
)


def utc_now() -> str:
    """Return the current UTC time as stored: naive, space, microseconds.

    That is what Pony writes into the service's DATETIME column, so both
    databases hold the same bytes; api_time() turns it into ISO 8601 + Z.
    """
    return datetime.now(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def api_time(stored: str) -> str:
    """Turn a stored 'YYYY-MM-DD HH:MM:SS.ffffff' into ISO 8601 UTC with Z."""
    return f"{stored[:10]}T{stored[11:]}Z"


def open_connection(path: Path) -> sqlite3.Connection:
    """Open one autocommit connection with the service's pragmas."""
    # isolation_level=None: we issue BEGIN/COMMIT ourselves; a lone SELECT is
    # its own implicit transaction.
    conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


def init_db(path: Path) -> None:
    """Create the table if it is missing (what the baseline does at start)."""
    conn = open_connection(path)
    try:
        conn.executescript(SCHEMA + MESSAGING_SCHEMA)
    finally:
        conn.close()


class Connections(threading.local):
    """One sqlite3 connection per thread, opened on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None

    def get(self) -> sqlite3.Connection:
        """Return this thread's connection."""
        conn = self.conn
        if conn is None:
            conn = self.conn = open_connection(self.path)
        return conn

    def close(self) -> None:
        """Close this thread's connection, if it opened one."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Health:
    """GET /healthz: liveness, no database."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer that the process is up."""
        resp.media = {"status": "ok"}


class Ready:
    """GET /readyz: the table exists."""

    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer 200 when the table is there, 503 otherwise."""
        row = (
            self._conns.get()
            .execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                ("app_metadata",),
            )
            .fetchone()
        )
        if row is None:
            resp.status = falcon.HTTP_503
            resp.media = {"status": "not ready"}
        else:
            resp.media = {"status": "ready"}


class Metadata:
    """GET/PUT /v1/metadata/{key}."""

    def __init__(self, conns: Connections, write_lock: threading.Lock) -> None:
        self._conns = conns
        self._write_lock = write_lock

    def on_get(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        """Return one entry or 404."""
        row = self._conns.get().execute(_SELECT, (key,)).fetchone()
        if row is None:
            raise falcon.HTTPNotFound(description=f"no metadata key {key!r}")
        resp.media = {"key": row[0], "value": row[1], "updated_at": api_time(row[2])}

    def on_put(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        """Create (201) or update (200) one entry in its own transaction."""
        body: Any = req.get_media()
        value = body.get("value") if isinstance(body, dict) else None
        if not isinstance(value, str):
            raise falcon.HTTPUnprocessableEntity(description="value must be a string")
        now = utc_now()
        conn = self._conns.get()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                created = conn.execute(_UPDATE, (value, now, key)).rowcount == 0
                if created:
                    conn.execute(_INSERT, (key, value, now))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = {"key": key, "value": value, "updated_at": api_time(now)}


class Messages:
    """POST/GET /v1/conversations/{cid}/messages, bearer token required."""

    def __init__(self, conns: Connections, write_lock: threading.Lock) -> None:
        self._conns = conns
        self._write_lock = write_lock

    def _caller(self, req: falcon.Request) -> tuple[int, str]:
        header = req.get_header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise falcon.HTTPUnauthorized()
        digest = hashlib.sha256(token.strip().encode()).digest()
        row = self._conns.get().execute(_CALLER, (digest,)).fetchone()
        if row is None:
            raise falcon.HTTPUnauthorized()
        return int(row[0]), str(row[1])

    def on_post(self, req: falcon.Request, resp: falcon.Response, cid: int) -> None:
        """Post a message (201) to a conversation the caller is in."""
        user_id, handle = self._caller(req)
        body: Any = req.get_media()
        text = body.get("body") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text or len(text.encode()) > 32_768:
            raise falcon.HTTPUnprocessableEntity(description="body must be 1-32 KiB")
        now = utc_now()
        conn = self._conns.get()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute(_POST, (cid, user_id, text, now, cid, user_id))
                if not cur.rowcount:
                    raise falcon.HTTPNotFound()
                conn.execute(_BUMP, (now, cid))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        resp.status = falcon.HTTP_201
        resp.media = {
            "id": cur.lastrowid,
            "conversation_id": cid,
            "author": handle,
            "body": text,
            "created_at": api_time(now),
        }

    def on_get(self, req: falcon.Request, resp: falcon.Response, cid: int) -> None:
        """The latest messages, newest first (?limit=, ?before=)."""
        user_id, _ = self._caller(req)
        limit = req.get_param_as_int("limit", min_value=1, max_value=200) or 50
        before = req.get_param_as_int("before", min_value=1) or 2**63 - 1
        conn = self._conns.get()
        if conn.execute(_IS_MEMBER, (cid, user_id)).fetchone() is None:
            raise falcon.HTTPNotFound()
        rows = conn.execute(_LATEST, (cid, before, limit + 1)).fetchall()
        items = [
            {
                "id": r[0],
                "conversation_id": cid,
                "author": r[1],
                "body": r[2],
                "created_at": api_time(r[3]),
            }
            for r in rows[:limit]
        ]
        more = len(rows) > limit
        resp.media = {"items": items, "next": items[-1]["id"] if more else None}


def create_app(path: Path) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the baseline WSGI app on the database file at path."""
    return open_app(path)[0]


def open_app(
    path: Path,
) -> tuple[falcon.App[falcon.Request, falcon.Response], Connections]:
    """The app and its connections (close() closes this thread's one)."""
    conns = Connections(path)
    app = falcon.App()
    app.add_route("/healthz", Health())
    app.add_route("/readyz", Ready(conns))
    write_lock = threading.Lock()
    app.add_route("/v1/metadata/{key}", Metadata(conns, write_lock))
    app.add_route("/v1/conversations/{cid:int}/messages", Messages(conns, write_lock))
    return app, conns


def _create(path: Path) -> falcon.App[falcon.Request, falcon.Response]:
    init_db(path)
    return create_app(path)


if __name__ == "__main__":
    raise SystemExit(serve("python -m bench.baseline", _create))
