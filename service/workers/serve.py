"""`serve` with SERVICE_WORKERS above 1: open and bind once, then supervise.

Called by service.cli.serve after the stop signals are handled and the
open-file limit is settled; raises what the single-process path raises
(ListenError, StartupInterruptedError, StartupError) for it to report.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from service.config import Settings
from service.fd_limit import FdBudget
from service.workers import supervisor
from service.workers.board import Board
from service.workers.worker import WorkerSetup

if TYPE_CHECKING:
    from service.server import StopSignals

log = logging.getLogger("service")


def serve_workers(
    settings: Settings,
    workers: int,
    signals: StopSignals,
    budget: FdBudget,
    started: float,
) -> int:
    """Migrate and open the database once, bind once, run workers until a signal.

    PROMETHEUS_MULTIPROC_DIR must name the workers' metrics folder already
    (supervisor.metrics_folder()).
    """
    from service import waitress_adapter
    from service.app import open_for
    from service.server import ListenError

    database = open_for(settings, processes=workers)
    sockets: list[Any] = []
    try:
        state = database.current_state()
        # Nothing of the database may cross the fork: each worker opens its own.
        database.detach()
        try:
            sockets = waitress_adapter.bind(settings.host, settings.port)
        except (OSError, ValueError) as ex:
            raise ListenError(settings.host, settings.port, ex) from ex
        urls = [_url(sock.getsockname()) for sock in sockets]
        board = Board(workers)
        setup = WorkerSetup(
            settings, database, sockets, board, budget.connection_limit, budget.streams
        )
        boss = supervisor.Supervisor(setup)
        signals.serving(boss.stop)

        def ready() -> None:
            log.info(
                "ready on %s with %d workers",
                ", ".join(urls),
                workers,
                extra={
                    "event.action": "ready",
                    "url.full": urls[0],
                    "urls": urls,
                    "workers": workers,
                    "schema_version": state.version,
                    "database": settings.target.describe(),
                    "connection_limit": budget.connection_limit,
                    "open_files_limit": budget.soft_limit,
                    "startup_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )

        code = boss.run(on_ready=ready)
        if code == 0:
            log.info("stopped accepting; in-flight requests drained")
        return code
    finally:
        for sock in sockets:
            sock.close()
        database.close()


def _url(address: tuple[Any, ...]) -> str:
    host, port = str(address[0]), int(address[1])
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
