"""Fixtures that build the image once and run it with testcontainers.

The image is built from the repository's Dockerfile with the build arguments that
scripts/build-image chooses (the official base where a registry answers; a local
Debian base and a host-built wheelhouse where none does). Every container and
volume a test makes is removed by its fixture, pass or fail: the Ryuk reaper
image cannot be pulled here, so it is disabled.
"""

from __future__ import annotations

import gc
import os
import subprocess
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.harness import IMAGE_TAG, LABEL, REPO, Docker, Service

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

BUILD_TIMEOUT = 780  # a first offline build makes the base image with debootstrap


def _docker_or_skip() -> Any:
    """A docker client, or skip (fail under SERVICE_REQUIRE_DOCKER=1) when none answers."""
    import docker  # imported here: the module must load on machines without docker-py

    client, reason = None, ""
    with warnings.catch_warnings():
        # A failed connection leaves its socket to the garbage collector; collect it
        # here, where its ResourceWarning is expected, not in some later test.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env(timeout=30)
            client.ping()
        except Exception as ex:  # any failure means "no daemon answers"
            reason = f"no Docker daemon answers ({type(ex).__name__}: {ex})"
            if client is not None:
                client.close()
        gc.collect()
    if reason:
        if os.environ.get("SERVICE_REQUIRE_DOCKER") == "1":
            pytest.fail(f"SERVICE_REQUIRE_DOCKER=1 but {reason}", pytrace=False)
        pytest.skip(f"{reason}; start one with scripts/docker-engine")
    return client


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker-py client for a daemon that answers."""
    client = _docker_or_skip()
    yield client
    client.close()


@pytest.fixture(scope="session")
def image(docker_client: Any) -> str:
    """Build the image from the repo's Dockerfile once per session; return its tag."""
    from testcontainers.core.image import DockerImage

    prepared = subprocess.run(
        [str(REPO / "scripts" / "build-image"), "--print-build-args"],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
        cwd=REPO,
    )
    if prepared.returncode != 0:
        pytest.fail(
            f"scripts/build-image --print-build-args failed:\n{prepared.stderr}",
            pytrace=False,
        )
    buildargs = dict(line.split("=", 1) for line in prepared.stdout.split())
    # Kept after the session so the next run reuses the layer cache.
    built = DockerImage(
        path=REPO,
        tag=IMAGE_TAG,
        clean_up=False,
        buildargs=buildargs,
        labels=LABEL,
        forcerm=True,  # no containers left behind by a failed step
        timeout=BUILD_TIMEOUT,
    )
    built.build()
    built.get_docker_client().client.close()
    # Earlier builds lose the tag and linger; drop them (never one in use).
    docker_client.images.prune(
        filters={"label": "org.opencontainers.image.title=service-foundation"}
    )
    return IMAGE_TAG


@pytest.fixture
def docker(docker_client: Any, image: str) -> Iterator[Docker]:
    """This test's containers and volumes; all removed afterwards, pass or fail."""
    made = Docker(docker_client, image)
    try:
        yield made
    finally:
        made.remove_all()


@pytest.fixture(scope="module")
def shared_docker(docker_client: Any, image: str) -> Iterator[Docker]:
    """Containers and volumes shared by one module's tests; removed afterwards."""
    made = Docker(docker_client, image)
    try:
        yield made
    finally:
        made.remove_all()


@pytest.fixture(scope="module")
def service(shared_docker: Docker) -> Service:
    """One running service container (read-only root, named volume) for a module."""
    return shared_docker.service()
