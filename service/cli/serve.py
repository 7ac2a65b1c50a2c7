"""`serve`: bootstrap the database, then serve HTTP until a signal."""

from __future__ import annotations

import errno
import ipaddress
import logging
import sys
import time

from service import fd_limit
from service.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_SIGNAL_BASE
from service.config import Settings
from service.workers import supervisor, worker_count

log = logging.getLogger("service")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost: assume it is reachable


def listen_advice(code: int | None) -> str:
    """What to change when the server cannot listen, by errno."""
    if code == errno.EADDRINUSE:
        return "another process listens there: stop it, or set SERVICE_PORT to a free port (0 picks one)"
    if code == errno.EACCES:
        return "ports below 1024 need privileges: set SERVICE_PORT to 1024 or above"
    if code == errno.EADDRNOTAVAIL:
        return "not an address of this machine: set SERVICE_HOST to one of its addresses (0.0.0.0: all of them)"
    if code is None:
        return "set SERVICE_HOST to a name or address of this machine"
    return "check SERVICE_HOST and SERVICE_PORT"


def cmd_serve(settings: Settings) -> int:
    """Bootstrap the database, then serve until SIGTERM/SIGINT/SIGHUP.

    One process, or (SERVICE_WORKERS above 1) a supervisor and its workers.
    """
    started = time.perf_counter()
    workers = worker_count(settings.workers)
    if workers > 1 and not sys.platform.startswith("linux"):
        # The shared write lock and the workers' parent-death signal are Linux's.
        log.critical(
            "SERVICE_WORKERS above 1 needs Linux; on %s set SERVICE_WORKERS=1",
            sys.platform,
            extra={"event.action": "failed"},
        )
        return EXIT_CONFIG
    if workers == 1:
        return _serve(settings, workers, started)
    # Before anything imports prometheus_client (service.server does).
    folder = supervisor.metrics_folder()
    try:
        return _serve(settings, workers, started)
    finally:
        supervisor.remove_folder(folder)


def _serve(settings: Settings, workers: int, started: float) -> int:
    from service.app import open_for
    from service.server import ListenError, StartupInterruptedError, StopSignals
    from service.serving import build_server
    from service.workers.serve import serve_workers

    signals = StopSignals()
    signals.install()  # before the migration: a signal then rolls it back
    try:
        budget = fd_limit.fit(
            settings.connection_limit,
            settings.threads,
            explicit="connection_limit" in settings.model_fields_set,
        )
    except fd_limit.FdLimitError as ex:
        log.critical("%s", ex, extra={"event.action": "failed"})
        return EXIT_CONFIG
    budget = fd_limit.fit_streams(budget, settings.threads, settings.events_max_streams)
    if settings.admin_token is None and not _is_loopback(settings.host):
        log.warning(
            "SERVICE_ADMIN_TOKEN is unset and the service listens on %s: "
            "/v1/metadata is open to anyone who can reach it",
            settings.host,
            extra={"event.action": "open_metadata"},
        )
    database = None
    try:
        if workers > 1:
            return serve_workers(settings, workers, signals, budget, started)
        database = open_for(settings)
        server, hub = build_server(
            settings,
            database,
            streams=budget.streams,
            connection_limit=budget.connection_limit,
        )
        signals.serving(server.stop)
        hub.start()  # this process's stream thread (and its retention window)
        state = database.current_state()
        log.info(
            "ready on %s",
            ", ".join(server.urls),
            extra={
                "event.action": "ready",
                "url.full": server.url,
                "urls": server.urls,
                "schema_version": state.version,
                "database": settings.target.describe(),
                "connection_limit": budget.connection_limit,
                "event_streams_limit": budget.streams,
                "open_files_limit": budget.soft_limit,
                "startup_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        server.run()
        log.info("stopped accepting; in-flight requests drained")
    except ListenError as ex:
        log.critical(
            "serve failed: %s; %s",
            ex,
            listen_advice(ex.errno),
            extra={"event.action": "failed"},
        )
        return EXIT_FAILED
    except StartupInterruptedError as ex:
        # The migration in progress (if any) rolled back with its transaction.
        log.critical(
            "stopped by %s during start-up, before serving; nothing half-applied",
            ex,
            extra={"event.action": "interrupted", "signal": str(ex)},
        )
        return EXIT_SIGNAL_BASE + ex.signum
    finally:
        try:
            if database is not None:
                database.close()
        finally:
            signals.finished()
    return EXIT_OK
