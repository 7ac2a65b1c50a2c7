"""Start-up failures: one line that names the setting to change."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.helpers import run_cli, service_env


def _critical(stderr: str) -> str:
    """The one CRITICAL line's message; no traceback anywhere."""
    assert "Traceback" not in stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    critical = [line["message"] for line in lines if line["log.level"] == "CRITICAL"]
    assert len(critical) == 1, lines
    return str(critical[0])


def test_a_port_in_use_names_the_port_and_service_port(tmp_path: Path) -> None:
    """Address already in use: exit 1, one line with the port and SERVICE_PORT."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = service_env(tmp_path / "db.sqlite3", host="127.0.0.1", port=port)
        result = run_cli("serve", env=env)
    assert result.returncode == 1
    message = _critical(result.stderr)
    assert f"cannot listen on 127.0.0.1 port {port}: Address already in use" in message
    assert "SERVICE_PORT" in message


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("192.0.2.1", "Cannot assign requested address"),  # TEST-NET-1: not ours
        ("no-such-host.invalid", "does not resolve"),
    ],
)
def test_a_host_that_is_not_ours_names_service_host(
    tmp_path: Path, host: str, expected: str
) -> None:
    """An address of another machine, or a name that resolves to none: SERVICE_HOST."""
    env = service_env(tmp_path / "db.sqlite3", host=host, port=0)
    result = run_cli("serve", env=env)
    assert result.returncode == 1
    message = _critical(result.stderr)
    assert expected in message
    assert "SERVICE_HOST" in message


def test_a_database_that_cannot_be_reached_names_its_setting(tmp_path: Path) -> None:
    """PostgreSQL that refuses the connection: the line names SERVICE_DATABASE_URL."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: refused
        env = service_env(tmp_path / "db.sqlite3")
        del env["SERVICE_DATABASE_PATH"]
        env["SERVICE_DATABASE_URL"] = f"postgresql://u:s3cret-pw@127.0.0.1:{port}/d"
        result = run_cli("migrate", env=env)
    assert result.returncode == 1
    message = _critical(result.stderr)
    assert "SERVICE_DATABASE_URL" in message
    assert "s3cret-pw" not in result.stderr


def test_a_database_path_that_cannot_hold_a_file_names_its_setting(
    tmp_path: Path,
) -> None:
    """A database path below a file: the line names SERVICE_DATABASE_PATH."""
    (tmp_path / "file").write_text("not a folder")
    result = run_cli("migrate", env=service_env(tmp_path / "file" / "db.sqlite3"))
    assert result.returncode == 1
    assert "SERVICE_DATABASE_PATH" in _critical(result.stderr)
