"""`serve`: bootstrap the database, then serve HTTP until a signal."""

from __future__ import annotations

import ipaddress
import logging
import time

from service.cli.common import EXIT_OK
from service.config import Settings

log = logging.getLogger("service")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost: assume it is reachable


def cmd_serve(settings: Settings) -> int:
    """Bootstrap the database, then serve until SIGTERM/SIGINT."""
    from service.app import create_app, open_for
    from service.server import Server, install_signal_handlers

    started = time.perf_counter()
    if settings.admin_token is None and not _is_loopback(settings.host):
        log.warning(
            "SERVICE_ADMIN_TOKEN is unset and the service listens on %s: "
            "/v1/metadata is open to anyone who can reach it",
            settings.host,
            extra={"event": "open_metadata"},
        )
    database = open_for(settings)
    try:
        app = create_app(settings, database=database)
        server = Server(
            app,
            host=settings.host,
            port=settings.port,
            threads=settings.threads,
            shutdown_timeout=settings.shutdown_timeout,
            channel_timeout=settings.channel_timeout,
            connection_limit=settings.connection_limit,
            # The app answers oversized bodies itself (413 problem+json); waitress
            # only stops bodies far beyond that, before buffering them whole.
            max_request_body_size=settings.max_body_bytes * 4,
        )
        install_signal_handlers(server.stop)
        state = database.current_state()
        log.info(
            "ready on %s",
            server.url,
            extra={
                "event": "ready",
                "url": server.url,
                "schema_version": state.version,
                "database": str(settings.database_path),
                "startup_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        server.run()
        log.info("stopped accepting; in-flight requests drained")
    finally:
        database.close()
    return EXIT_OK
