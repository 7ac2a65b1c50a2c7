"""Prometheus metrics: requests, latency, write-lock waits, busy answers."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator

import falcon
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from spectree import Response

from service.openapi import documented

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
LOCK_BUCKETS = (0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestStats(Collector):
    """service_http_requests_total and service_http_request_duration_seconds.

    A collector rather than a Counter and a Histogram: those take a lock per
    value and walk the buckets in Python on every observation, about a tenth
    of a small request. Here a request costs one bisect, one dict lookup and
    a few integer additions under one lock; the Prometheus families are
    built when /metrics is read.
    """

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self._bounds = buckets
        self._lock = threading.Lock()
        # (route, method, status) -> [seconds sum, count per bucket..., over the last]
        self._series: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request and its latency."""
        bucket = bisect_left(self._bounds, seconds) + 1
        key = (route, method, status)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = [0.0] * (len(self._bounds) + 2)
            series[0] += seconds
            series[bucket] += 1

    def collect(self) -> Iterator[Metric]:
        """The two metric families as they stand now."""
        with self._lock:
            snapshot = {key: list(series) for key, series in self._series.items()}
        requests = CounterMetricFamily(
            "service_http_requests",
            "HTTP requests answered",
            labels=["route", "method", "status"],
        )
        latency = HistogramMetricFamily(
            "service_http_request_duration_seconds",
            "Time to answer a request",
            labels=["route", "method"],
        )
        merged: dict[tuple[str, str], list[float]] = {}
        for (route, method, status), series in sorted(snapshot.items()):
            requests.add_metric([route, method, str(status)], sum(series[1:]))
            total = merged.setdefault((route, method), [0.0] * len(series))
            for i, value in enumerate(series):
                total[i] += value
        for (route, method), series in merged.items():
            latency.add_metric(
                [route, method], _cumulative(self._bounds, series[1:]), series[0]
            )
        yield requests
        yield latency


class LockWaitStats(Collector):
    """service_db_write_lock_wait_seconds and service_db_write_lock_timeouts.

    Observed on every write transaction, so kept as cheap as RequestStats.
    """

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self._bounds = buckets
        self._lock = threading.Lock()
        self._series = [0.0] * (len(buckets) + 2)  # [sum, count per bucket...]
        self._timeouts = 0

    def observe(self, seconds: float, acquired: bool) -> None:
        """Record one wait for the write lock, and whether it gave up."""
        bucket = bisect_left(self._bounds, seconds) + 1
        with self._lock:
            self._series[0] += seconds
            self._series[bucket] += 1
            if not acquired:
                self._timeouts += 1

    def collect(self) -> Iterator[Metric]:
        """The two metric families as they stand now."""
        with self._lock:
            series, timeouts = list(self._series), self._timeouts
        wait = HistogramMetricFamily(
            "service_db_write_lock_wait_seconds",
            "Time a request waited for this process's write lock",
        )
        wait.add_metric([], _cumulative(self._bounds, series[1:]), series[0])
        yield wait
        yield CounterMetricFamily(
            "service_db_write_lock_timeouts",
            "Waits for the write lock that gave up",
            value=timeouts,
        )


def _cumulative(
    bounds: tuple[float, ...], counts: list[float]
) -> list[tuple[str, float]]:
    """Per-bucket counts (the last one over every bound) as Prometheus buckets."""
    names = [floatToGoString(b) for b in bounds]  # type: ignore[no-untyped-call]
    total, buckets = 0.0, []
    for bound, count in zip((*names, "+Inf"), counts, strict=True):
        total += count
        buckets.append((bound, total))
    return buckets


class Metrics:
    """One registry per app, so that tests can build many apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = RequestStats(LATENCY_BUCKETS)
        self.registry.register(self.requests)
        self.lock_wait = LockWaitStats(LOCK_BUCKETS)
        self.registry.register(self.lock_wait)
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

    def observe_request(
        self, route: str, method: str, status: int, seconds: float
    ) -> None:
        """Count one answered request and record its latency.

        route must be a URI template or "unmatched"; a method outside
        KNOWN_METHODS is counted as "other".
        """
        if method not in KNOWN_METHODS:
            method = OTHER_METHOD
        self.requests.observe(route, method, status, seconds)

    def observe_lock_wait(self, seconds: float, acquired: bool) -> None:
        """Record one wait for the write lock."""
        self.lock_wait.observe(seconds, acquired)


class MetricsResource:
    """GET /metrics in the Prometheus text format."""

    uses_database = False

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    @documented(tags=["operations"], resp=Response("HTTP_200"))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Render every metric (Prometheus text format)."""
        resp.data = generate_latest(self._metrics.registry)
        resp.content_type = CONTENT_TYPE_LATEST
