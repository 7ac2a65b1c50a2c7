"""Run the image for tests: containers, volumes and HTTP calls, all cleaned up.

Used by conftest.py's fixtures; containers run as production runs them
(read-only root filesystem, tmpfs /tmp, a named volume on /data).
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGE_TAG = "service-foundation:integration-test"
PORT = 8080
UID = 10001
READY_TIMEOUT = 60
LABEL = {"service-foundation.test": "integration"}


@dataclass
class Response:
    """One HTTP answer: status, headers (lower-case names) and decoded body."""

    status: int
    headers: dict[str, str]
    body: Any

    @property
    def content_type(self) -> str:
        """The media type without parameters."""
        return self.headers.get("content-type", "").split(";")[0].strip()


@dataclass
class Service:
    """A running service container and how to reach it."""

    container: Any  # testcontainers DockerContainer
    volume: str
    _host: str = ""

    @property
    def wrapped(self) -> Any:
        """The docker-py container."""
        return self.container.get_wrapped_container()

    def address(self) -> tuple[str, int]:
        """Host and port where the container's 8080 is published (it changes on restart)."""
        if not self._host:
            self._host = self.container.get_container_host_ip()
        return self._host, int(self.container.get_exposed_port(PORT))

    def logs(self) -> str:
        """Everything the container wrote to stdout and stderr."""
        return str(self.wrapped.logs().decode(errors="replace"))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout: float = 10,
        token: str | None = None,
    ) -> Response:
        """Send one HTTP request over a fresh connection (with a bearer token if given)."""
        host, port = self.address()
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        with closing(http.client.HTTPConnection(host, port, timeout=timeout)) as conn:
            conn.request(method, path, body=data, headers=headers)
            answer = conn.getresponse()
            raw = answer.read()
            got = {k.lower(): v for k, v in answer.getheaders()}
        decoded = (
            json.loads(raw) if raw and "json" in got.get("content-type", "") else raw
        )
        return Response(answer.status, got, decoded)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll /readyz until 200; fail with the logs if the container exits or stalls."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            self.wrapped.reload()
            if self.wrapped.status not in ("created", "running"):
                pytest.fail(
                    f"container {self.wrapped.status} before ready:\n{self.logs()}",
                    pytrace=False,
                )
            try:
                answer = self.request("GET", "/readyz", timeout=2)
            except (OSError, http.client.HTTPException) as ex:
                last = repr(ex)
            else:
                if answer.status == 200:
                    return
                last = f"{answer.status} {answer.body!r}"
            time.sleep(0.2)
        pytest.fail(
            f"/readyz not 200 within {timeout} s ({last}):\n{self.logs()}",
            pytrace=False,
        )

    def stop(self, timeout: int = 10) -> int:
        """`docker stop` (SIGTERM, SIGKILL after timeout s); return the exit code."""
        self.wrapped.stop(timeout=timeout)
        return int(self.wrapped.wait(timeout=timeout + 30)["StatusCode"])

    def start_again(self) -> None:
        """`docker start` the stopped container and wait until it is ready."""
        self.wrapped.start()
        self.wait_ready()


@dataclass
class Docker:
    """Starts containers and volumes for one test and removes them all afterwards."""

    client: Any
    image: str
    containers: list[Any] = field(default_factory=list)
    volumes: list[Any] = field(default_factory=list)

    def volume(self) -> str:
        """A new named volume, removed at teardown."""
        made = self.client.volumes.create(
            name=f"sf-it-{uuid.uuid4().hex[:12]}", labels=LABEL
        )
        self.volumes.append(made)
        return str(made.name)

    def service(
        self,
        volume: str | None = None,
        *,
        wait: bool = True,
        mounts: dict[str, str] | None = None,
        **env: str,
    ) -> Service:
        """Run the image as production does: read-only root, tmpfs /tmp, /data volume.

        mounts maps host folders to read-only paths in the container.
        """
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer

        # The Ryuk reaper image cannot be pulled here; Docker.remove_all cleans up.
        testcontainers_config.ryuk_disabled = True

        volume = volume or self.volume()
        container = (
            DockerContainer(self.image)
            .with_exposed_ports(PORT)
            .with_volume_mapping(volume, "/data", "rw")
            .with_tmpfs_mount("/tmp")
            .with_kwargs(read_only=True, labels=LABEL)
        )
        for host_path, container_path in (mounts or {}).items():
            container.with_volume_mapping(host_path, container_path, "ro")
        for key, value in env.items():
            container.with_env(key, value)
        self.containers.append(container)
        container.start()
        service = Service(container, volume)
        if wait:
            service.wait_ready()
        return service

    def helper(self, volume: str, script: str, timeout: float = 60) -> str:
        """Run `python -c script` in the same image with the volume read-only on /data."""
        container = self.client.containers.create(
            self.image,
            entrypoint=["/opt/venv/bin/python", "-c", script],
            volumes={volume: {"bind": "/data", "mode": "ro"}},
            read_only=True,
            network_disabled=True,
            labels=LABEL,
        )
        self.containers.append(container)
        container.start()
        code = container.wait(timeout=timeout)["StatusCode"]
        out = container.logs().decode(errors="replace")
        assert code == 0, f"helper container exited {code}:\n{out}"
        return str(out)

    def remove_all(self) -> None:
        """Remove containers (with anonymous volumes), then named volumes."""
        import docker.errors

        for container in reversed(self.containers):
            with suppress(docker.errors.NotFound):
                if hasattr(container, "get_wrapped_container"):  # testcontainers
                    container.stop(force=True, delete_volume=True)
                else:  # docker-py
                    container.remove(force=True, v=True)
        for volume in self.volumes:
            with suppress(docker.errors.NotFound):
                volume.remove(force=True)
