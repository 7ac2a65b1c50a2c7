"""Make SERVICE_CONNECTION_LIMIT and the open-file limit (RLIMIT_NOFILE) agree.

Each connection is a file descriptor. Past the soft limit accept() fails
with EMFILE (waitress logs it and the listening socket stays readable, a
busy loop) and so does every new SQLite connection, so the limit must hold
every connection plus what the process needs besides them.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass, replace

log = logging.getLogger(__name__)

# Besides connections: stdio, the listening sockets and their wake-up
# pipes, the migration lock, Python's own; measured at 11 on a ready
# `serve`, so this leaves room.
BASE_FDS = 32
# Per worker thread: its SQLite connection to the database and the -wal
# (the -shm is shared), or its PostgreSQL socket; one spare.
FDS_PER_THREAD = 3


class FdLimitError(Exception):
    """The hard limit cannot hold the connection limit; str() says what to do."""


@dataclass(frozen=True)
class FdBudget:
    """What start-up settled on."""

    connection_limit: int
    soft_limit: int
    hard_limit: int
    raised_from: int | None
    streams: int = 0  # event streams the limit holds beside them (fit_streams)


def reserve(threads: int) -> int:
    """File descriptors the process needs besides its connections."""
    return BASE_FDS + FDS_PER_THREAD * threads


def fit(connection_limit: int, threads: int, *, explicit: bool) -> FdBudget:
    """Raise the soft limit toward the hard one until the connections fit.

    When even the hard limit is too small: a limit the operator set
    (explicit) is refused with FdLimitError; the default is lowered to what
    fits, with a warning.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connection_limit + reserve(threads)
    raised_from = None
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if new_soft > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            raised_from, soft = soft, new_soft
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return FdBudget(connection_limit, soft, hard, raised_from)
    fits = soft - reserve(threads)
    advice = (
        f"lower SERVICE_CONNECTION_LIMIT to at most {fits} or raise the hard "
        "limit (ulimit -Hn; docker run --ulimit nofile=N:N; systemd LimitNOFILE=)"
        if fits >= 1
        else "raise the hard limit (ulimit -Hn; docker run --ulimit nofile=N:N; "
        "systemd LimitNOFILE=)"
    )
    if explicit or fits < 1:
        raise FdLimitError(
            f"SERVICE_CONNECTION_LIMIT={connection_limit} needs {wanted} open files "
            f"with {threads} threads, but the open-file limit (RLIMIT_NOFILE) is "
            f"{soft}: {advice}"
        )
    log.warning(
        "the open-file limit (RLIMIT_NOFILE) is %d: accepting at most %d "
        "connections instead of %d",
        soft,
        fits,
        connection_limit,
        extra={"event.action": "connection_limit_lowered", "connection_limit": fits},
    )
    return FdBudget(fits, soft, hard, raised_from)


def fit_streams(budget: FdBudget, threads: int, streams: int) -> FdBudget:
    """Raise the soft limit for event streams too; the budget with how many fit.

    Each event stream is an open socket that waitress no longer counts
    (service/events/), so the limit must hold them beside the
    connections. Connections come first: the streams get what is left
    under the hard limit, with a warning when that is fewer than asked.
    """
    base = budget.connection_limit + reserve(threads)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = base + streams
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if new_soft > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            soft = new_soft
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return replace(budget, soft_limit=soft, streams=streams)
    fits = max(0, soft - base)
    log.warning(
        "the open-file limit (RLIMIT_NOFILE) is %d: holding at most %d event "
        "streams instead of %d",
        soft,
        fits,
        streams,
        extra={"event.action": "event_streams_lowered", "event_streams_limit": fits},
    )
    return replace(budget, soft_limit=soft, streams=fits)
