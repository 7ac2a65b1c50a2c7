"""Run the image for tests: containers, volumes and HTTP calls, all cleaned up.

Used by conftest.py's fixtures; containers run as production runs them
(read-only root filesystem, tmpfs /tmp, a named volume on /data).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import uuid
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.pg import free_port

REPO = Path(__file__).resolve().parents[2]
# One tag per checkout: sessions in sibling worktrees share the engine, and one
# rebuilding a shared tag mid-run would swap the image under another's tests.
IMAGE_TAG = (
    "service-foundation:integration-test-"
    + hashlib.sha256(str(REPO).encode()).hexdigest()[:10]
)
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
    # On the host's network (no published port): where it listens on 127.0.0.1.
    host_port: int | None = None

    @property
    def wrapped(self) -> Any:
        """The docker-py container."""
        return self.container.get_wrapped_container()

    def address(self) -> tuple[str, int]:
        """Host and port where the container's 8080 is published (it changes on restart)."""
        if self.host_port is not None:
            return "127.0.0.1", self.host_port
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
        host_network: bool = False,
        cpus: float | None = None,
        **env: str,
    ) -> Service:
        """Run the image as production does: read-only root, tmpfs /tmp, /data volume.

        mounts maps host folders to read-only paths in the container. With
        host_network the container shares the host's network namespace and
        serves on a free port of 127.0.0.1 (nothing published): it reaches
        servers the tests run on the host's loopback, such as PostgreSQL.
        cpus is docker run's --cpus (a CPU quota).
        """
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer

        # The Ryuk reaper image cannot be pulled here; Docker.remove_all cleans up.
        testcontainers_config.ryuk_disabled = True

        volume = volume or self.volume()
        host_port = None
        container = DockerContainer(self.image)
        limits = {} if cpus is None else {"nano_cpus": int(cpus * 1e9)}
        if host_network:
            host_port = free_port()
            container.with_kwargs(
                read_only=True, labels=LABEL, network_mode="host", **limits
            ).with_env("SERVICE_HOST", "127.0.0.1").with_env(
                "SERVICE_PORT", str(host_port)
            )
        else:
            container.with_exposed_ports(PORT).with_kwargs(
                read_only=True, labels=LABEL, **limits
            )
        container.with_volume_mapping(volume, "/data", "rw").with_tmpfs_mount("/tmp")
        for host_path, container_path in (mounts or {}).items():
            container.with_volume_mapping(host_path, container_path, "ro")
        for key, value in env.items():
            container.with_env(key, value)
        self.containers.append(container)
        container.start()
        service = Service(container, volume, host_port=host_port)
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


def one_conversation(service: Service, admin: str) -> None:
    """Admin makes users and a token; a user converses, pages, searches; revoked: 401."""
    for handle in ("ann", "bob"):
        made = service.request(
            "POST",
            "/v1/users",
            {"handle": handle, "display_name": handle.title()},
            token=admin,
        )
        assert made.status == 201, made.body
    issued = service.request("POST", "/v1/users/ann/tokens", token=admin)
    assert issued.status == 201
    ann = issued.body["token"]

    started = service.request(
        "POST", "/v1/conversations", {"title": "lunch", "members": ["bob"]}, token=ann
    )
    assert started.status == 201, started.body
    conversation = started.body["id"]
    for body in ("where shall we eat", "the noodle place", "see you at noon"):
        posted = service.request(
            "POST",
            f"/v1/conversations/{conversation}/messages",
            {"body": body},
            token=ann,
        )
        assert posted.status == 201, posted.body
    page = service.request(
        "GET", f"/v1/conversations/{conversation}/messages?limit=2", token=ann
    )
    rest = service.request(
        "GET",
        f"/v1/conversations/{conversation}/messages?limit=2&before={page.body['next']}",
        token=ann,
    )
    found = service.request("GET", "/v1/search?q=noodle", token=ann)
    revoked = service.request("DELETE", f"/v1/tokens/{issued.body['id']}", token=admin)
    after_revoke = service.request("GET", "/v1/me", token=ann)

    bodies = [m["body"] for m in page.body["items"] + rest.body["items"]]
    assert bodies == ["see you at noon", "the noodle place", "where shall we eat"]
    (hit,) = found.body["items"]
    assert hit["conversation_id"] == conversation
    assert "<mark>noodle</mark>" in hit["snippet"]
    assert revoked.status == 204
    assert after_revoke.status == 401
    assert "bearer" in after_revoke.headers["www-authenticate"].lower()
