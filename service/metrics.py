"""Prometheus metrics: requests, latency, write-lock waits, busy answers.

Every metric is one of prometheus_client's own (Counter, Histogram, Gauge),
so that its multiprocess mode can serve them unchanged: with several
worker processes (SERVICE_WORKERS) the supervisor points
PROMETHEUS_MULTIPROC_DIR at a folder of its own before prometheus_client
is imported, every worker's values go to files there, and /metrics,
whichever worker answers it, adds up every worker's, the dead ones'
included (a counter never goes back). /metrics is prometheus_client's own
WSGI exposition (content negotiation, gzip, `name[]` filters).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import falcon
import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from spectree import Response

from service.openapi import documented
from service.routing import openapi_path

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Label values come from closed sets only: waitress accepts any token as a
# method, and each new label value would be a series kept for good.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)
OTHER_METHOD = "other"
UNMATCHED = "unmatched"
LOCK_BUCKETS = (0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0)

# The `_created` series (a timestamp per labelled child) would double what
# /metrics holds and says nothing a counter's reset does not.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """The app's metrics, in a registry of their own (tests build many apps).

    exposition is what /metrics shows: the registry itself; or, across
    worker processes (multiprocess=True), prometheus_client's
    MultiProcessCollector over every worker's files. The process_* metrics
    (CPU, memory, descriptors) describe one process, so they are left out
    there, as prometheus_client's multiprocess mode leaves them out.
    """

    def __init__(self, *, multiprocess: bool = False) -> None:
        self.registry = CollectorRegistry()
        if multiprocess:
            self.exposition = CollectorRegistry()
            MultiProcessCollector(self.exposition)  # type: ignore[no-untyped-call]
        else:
            self.exposition = self.registry
            prometheus_client.ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "service_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "service_http_request_duration_seconds",
            "Time to answer a request",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.lock_wait = Histogram(
            "service_db_write_lock_wait_seconds",
            "Time a request waited for the write lock (every worker's)",
            buckets=LOCK_BUCKETS,
            registry=self.registry,
        )
        self.lock_timeouts = Counter(
            "service_db_write_lock_timeouts",
            "Waits for the write lock that gave up",
            registry=self.registry,
        )
        self.busy = Counter(
            "service_db_busy",
            "Requests answered 503 because the database stayed locked",
            registry=self.registry,
        )
        self.schema_version = Gauge(
            "service_schema_version",
            "Newest applied migration version",
            registry=self.registry,
            multiprocess_mode="livemax",  # the workers agree; a dead one does not count
        )
        # Live delivery (service/events/): what the stream thread holds and sends.
        self.event_streams = Gauge(
            "service_events_streams",
            "Event streams open (GET /v1/events subscribers)",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.events_sent = Counter(
            "service_events_sent",
            "Events written to event streams (one per stream)",
            registry=self.registry,
        )
        self.event_lag = Histogram(
            "service_events_delivery_lag_seconds",
            "From an event's write to its being sent to its live streams",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.event_streams_closed = Counter(
            "service_events_streams_closed",
            "Event streams ended, by reason",
            ["reason"],
            registry=self.registry,
        )
        # (template, method, status) -> the labelled children: labels() takes a
        # lock and builds a key per call, and the route label is a regex away
        # from the template; this is one dict lookup per request.
        self._children: dict[tuple[str | None, str, int], tuple[Any, Any]] = {}

    def observe_request(
        self, template: str | None, method: str, status: int, seconds: float
    ) -> None:
        """Count one answered request and record its latency.

        template is the matched route's URI template (None: no route);
        a method outside KNOWN_METHODS is counted as "other".
        """
        if method not in KNOWN_METHODS:
            method = OTHER_METHOD  # before the key: clients choose the methods
        key = (template, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = self._labelled(template, method, status)
        children[0].inc()
        children[1].observe(seconds)

    def _labelled(
        self, template: str | None, method: str, status: int
    ) -> tuple[Any, Any]:
        route = UNMATCHED if template is None else openapi_path(template)
        return (
            self.requests.labels(route, method, str(status)),
            self.latency.labels(route, method),
        )

    def observe_lock_wait(self, seconds: float, acquired: bool) -> None:
        """Record one wait for the write lock, and whether it gave up."""
        self.lock_wait.observe(seconds)
        if not acquired:
            self.lock_timeouts.inc()


def forget_process(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters keep counting in the sum)."""
    mark_process_dead(pid)  # type: ignore[no-untyped-call]


Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class MetricsResource:
    """GET /metrics: prometheus_client's WSGI exposition inside the app.

    A Falcon route rather than a separate WSGI mount, so that /metrics keeps
    the request id, HEAD, OPTIONS, the access line and its own counting.
    """

    uses_database = False

    def __init__(self, registry: CollectorRegistry) -> None:
        self._exposition: Wsgi = prometheus_client.make_wsgi_app(registry)

    @documented(tags=["operations"], resp=Response("HTTP_200"))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Every metric: Prometheus text, or OpenMetrics by Accept; gzip if asked."""
        env = req.env
        if env["REQUEST_METHOD"] != "GET":
            # HEAD: the exposition answers GET only; Falcon drops the body.
            env = {**env, "REQUEST_METHOD": "GET"}
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            started.extend((status, headers))

        body = b"".join(self._exposition(env, start_response))
        status, headers = started
        resp.status = int(status.split(" ", 1)[0])
        for name, value in headers:
            resp.set_header(name, value)
        resp.vary = ("Accept", "Accept-Encoding")
        resp.data = body
