"""SERVICE_ADMIN_TOKEN_FILE and SERVICE_DATABASE_URL_FILE: secrets from files."""

from __future__ import annotations

from pathlib import Path

import falcon.testing
import pytest

from service.app import create_app, open_for
from service.config import load_settings
from tests.helpers import run_cli, service_env

TOKEN = "s3cret-admin-token-from-a-file"  # noqa: S105 - a test value


def _one_line(env: dict[str, str]) -> str:
    """Run `status` (reads the settings first); the one stderr line, exit 2."""
    result = run_cli("status", env=env, timeout=30)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, lines
    assert "s3cret" not in result.stderr + result.stdout
    return lines[0]


def test_admin_token_is_read_from_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The file's content, less its trailing newline, is the admin token."""
    secret = tmp_path / "admin_token"
    secret.write_text(TOKEN + "\n")
    monkeypatch.delenv("SERVICE_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("SERVICE_ADMIN_TOKEN_FILE", str(secret))
    monkeypatch.setenv("SERVICE_DATABASE_PATH", str(tmp_path / "db.sqlite3"))
    settings = load_settings()
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings)
    database = open_for(settings)
    try:
        client = falcon.testing.TestClient(create_app(settings, database=database))
        body = {"handle": "alice", "display_name": "Alice"}
        assert client.simulate_post("/v1/users", json=body).status_code == 401
        authorized = {"Authorization": f"Bearer {TOKEN}"}
        answer = client.simulate_post("/v1/users", json=body, headers=authorized)
        assert answer.status_code == 201, answer.text
    finally:
        database.close()


def test_database_url_is_read_from_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SERVICE_DATABASE_URL_FILE selects PostgreSQL like the variable would."""
    secret = tmp_path / "database_url"
    secret.write_text("postgresql://app:s3cret-pw@db.internal/service\r\n")
    monkeypatch.delenv("SERVICE_DATABASE_URL", raising=False)
    monkeypatch.delenv("SERVICE_DATABASE_PATH", raising=False)
    monkeypatch.setenv("SERVICE_DATABASE_URL_FILE", str(secret))
    target = load_settings().target
    assert target.dialect == "postgres"
    assert target.url == "postgresql://app:s3cret-pw@db.internal/service"


@pytest.mark.parametrize("field", ["admin_token", "database_url"])
def test_a_missing_file_is_one_line_naming_variable_and_path(
    tmp_path: Path, field: str
) -> None:
    """A _FILE that names no file: exit 2, one line with the variable and the path."""
    missing = tmp_path / "nowhere" / "secret"
    env = service_env(tmp_path / "db.sqlite3", **{f"{field}_file": str(missing)})
    line = _one_line(env)
    assert line == (
        f"configuration error: SERVICE_{field.upper()}_FILE: cannot read {missing}: "
        "No such file or directory"
    )
    assert not (tmp_path / "db.sqlite3").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "Is a directory"),
        (b"", "is empty"),
        (b"\n", "is empty"),
        (b"\xffs3cret\xfe", "is not UTF-8 text"),
        (b"s3cret" * 20_000, "is larger than 65536 bytes"),
    ],
)
def test_an_unusable_file_is_one_line(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    """A directory, an empty, binary or huge file: one line saying which, no content."""
    secret = tmp_path / "secret"
    if content is None:
        secret.mkdir()
    else:
        secret.write_bytes(content)
    env = service_env(tmp_path / "db.sqlite3", admin_token_file=str(secret))
    line = _one_line(env)
    assert line.startswith("configuration error: SERVICE_ADMIN_TOKEN_FILE: ")
    assert str(secret) in line
    assert expected in line


def test_the_variable_and_its_file_both_set_is_an_error(tmp_path: Path) -> None:
    """SERVICE_ADMIN_TOKEN with SERVICE_ADMIN_TOKEN_FILE: exit 2, one line naming both."""
    secret = tmp_path / "admin_token"
    secret.write_text(TOKEN)
    env = service_env(
        tmp_path / "db.sqlite3", admin_token=TOKEN, admin_token_file=str(secret)
    )
    line = _one_line(env)
    assert "SERVICE_ADMIN_TOKEN and SERVICE_ADMIN_TOKEN_FILE are both set" in line


def test_a_bad_value_in_a_file_names_the_file_variable(tmp_path: Path) -> None:
    """A token too short in its file: the line names SERVICE_ADMIN_TOKEN_FILE, not the value."""
    secret = tmp_path / "admin_token"
    secret.write_text("s3cret-short\n")
    env = service_env(tmp_path / "db.sqlite3", admin_token_file=str(secret))
    line = _one_line(env)
    assert line.startswith(
        "configuration error: SERVICE_ADMIN_TOKEN_FILE (the file's content): "
    )
    assert "at least 16 characters" in line
