"""SERVICE_WORKERS in the image: workers on a read-only root, sized by the CPU quota."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.harness import Docker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def _lines(logs: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in logs.splitlines() if line.startswith("{")]


def test_two_workers_serve_count_and_drain_on_docker_stop(docker: Docker) -> None:
    """SERVICE_WORKERS=2 in the production container (read-only root, tmpfs /tmp):
    /readyz counts both workers, writes and reads work, /metrics adds up both, and
    docker stop drains each worker and exits 0."""
    service = docker.service(SERVICE_WORKERS="2")
    ready = service.request("GET", "/readyz")
    assert (ready.status, ready.body["workers"]) == (
        200,
        {"ready": 2, "configured": 2},
    )
    for n in range(6):
        put = service.request("PUT", f"/v1/metadata/w{n}", {"value": str(n)})
        assert put.status == 201, put.body
        assert service.request("GET", f"/v1/metadata/w{n}").status == 200
    scrape = service.request("GET", "/metrics")
    assert scrape.status == 200
    puts = [
        float(line.rsplit(" ", 1)[1])
        for line in scrape.body.decode().splitlines()
        if line.startswith("service_http_requests_total{")
        and 'method="PUT"' in line
        and 'status="201"' in line
    ]
    assert puts == [6.0]
    assert service.stop() == 0
    lines = _lines(service.logs())
    started = {
        line["worker.pid"]
        for line in lines
        if line.get("event.action") == "worker_started"
    }
    drained = {
        line["process.pid"]
        for line in lines
        if line.get("message") == "received SIGTERM; draining"
    }
    assert len(started) == 2
    assert started <= drained
    assert [
        line["message"] for line in lines if line.get("log.level") == "CRITICAL"
    ] == []


def test_auto_follows_the_containers_cpu_quota(docker: Docker) -> None:
    """SERVICE_WORKERS=auto under docker run --cpus 1 is one process, whatever the
    host's cores: the quota, not the host, sizes it."""
    service = docker.service(cpus=1, SERVICE_WORKERS="auto")
    ready = service.request("GET", "/readyz")
    assert ready.status == 200
    assert "workers" not in ready.body
    lines = _lines(service.logs())
    assert [
        line for line in lines if line.get("event.action") == "worker_started"
    ] == []
    assert service.stop() == 0
