"""Prometheus metrics: requests, latency, write-lock waits, busy answers."""

from __future__ import annotations

import falcon
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

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
LOCK_BUCKETS = (0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One registry per app, so that tests can build many apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
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
            "Time a request waited for this process's write lock",
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
        )
        # labels() builds its key on every call; the children are cached here.
        self._request_children: dict[
            tuple[str, str, int], tuple[Counter, Histogram]
        ] = {}

    def observe_request(
        self, route: str, method: str, status: int, seconds: float
    ) -> None:
        """Count one answered request and record its latency."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_lock_wait(self, seconds: float, acquired: bool) -> None:
        """Record one wait for the write lock."""
        self.lock_wait.observe(seconds)
        if not acquired:
            self.lock_timeouts.inc()


class MetricsResource:
    """GET /metrics in the Prometheus text format."""

    uses_database = False

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Render every metric."""
        resp.data = generate_latest(self._metrics.registry)
        resp.content_type = CONTENT_TYPE_LATEST
