"""The app on its waitress server, as one process or one worker serves it."""

from __future__ import annotations

import socket
from typing import Any

from db.database import Database
from service.config import Settings
from service.events.hub import Hub
from service.server import Server
from service.workers.board import Board


def build_server(
    settings: Settings,
    database: Database,
    *,
    streams: int,
    connection_limit: int,
    sockets: list[socket.socket] | None = None,
    workers: Board | None = None,
) -> tuple[Server, Hub]:
    """The server of the app on database, and the hub holding its event streams.

    streams: what the open-file limit leaves for GET /v1/events. sockets:
    listening sockets bound already (a worker's); else settings' host/port.
    """
    from service.app import create_app

    hub = Hub(database, settings)
    hub.limit_streams(streams)
    app = create_app(settings, database=database, hub=hub, workers=workers)
    where: dict[str, Any] = (
        {"sockets": sockets}
        if sockets is not None
        else {"host": settings.host, "port": settings.port}
    )
    server = Server(
        app,
        **where,
        threads=settings.threads,
        shutdown_timeout=settings.shutdown_timeout,
        channel_timeout=settings.channel_timeout,
        connection_limit=connection_limit,
        # The app answers oversized bodies itself (413 problem+json); waitress
        # only stops bodies far beyond that, before buffering them whole.
        max_request_body_size=settings.max_body_bytes * 4,
        # A stop ends the event streams first, each with a retry hint.
        on_stop=hub.shutdown,
    )
    return server, hub
