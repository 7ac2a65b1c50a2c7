"""Settings: defaults, and invalid values stopping the process with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ConfigError, Settings, load_settings
from tests.helpers import run_cli, service_env


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With no environment the documented defaults apply and the path is absolute."""
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.database_path == tmp_path / "var" / "service.sqlite3"
    assert (settings.host, settings.port, settings.threads) == ("127.0.0.1", 8080, 8)
    assert (settings.migrate, settings.log_level, settings.synchronous) == (
        "apply",
        "INFO",
        "NORMAL",
    )


def test_environment_is_read_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """SERVICE_* variables are read, case-insensitively for enumerations."""
    monkeypatch.setenv("SERVICE_PORT", "9999")
    monkeypatch.setenv("SERVICE_MIGRATE", "Verify")
    monkeypatch.setenv("SERVICE_LOG_LEVEL", "debug")
    settings = load_settings()
    assert (settings.port, settings.migrate, settings.log_level) == (
        9999,
        "verify",
        "DEBUG",
    )


def test_error_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad value raises ConfigError naming the SERVICE_ variable."""
    monkeypatch.setenv("SERVICE_THREADS", "0")
    with pytest.raises(ConfigError, match=r"^SERVICE_THREADS: "):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("THREADS", "-1"),
        ("MIGRATE", "sometimes"),
        ("LOG_LEVEL", "chatty"),
        ("SYNCHRONOUS", "OFF"),
        ("WORKERS", "0"),
        ("WORKERS", "257"),
        ("WORKERS", "many"),
        ("WORKERS", "1.5"),
    ],
)
def test_bad_setting_exits_2_with_one_line_before_opening(
    tmp_path: Path, name: str, value: str
) -> None:
    """serve exits 2 with one stderr line naming the variable; no database is created."""
    db_path = tmp_path / "var" / "db.sqlite3"
    result = run_cli("serve", env=service_env(db_path, **{name.lower(): value}))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"SERVICE_{name}" in lines[0]
    assert not db_path.parent.exists()


def test_workers_is_a_count_or_auto_which_means_every_usable_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SERVICE_WORKERS defaults to 1, takes a number, and auto is the cores this
    process may run on (its CPU affinity)."""
    import os

    from service.workers import usable_cores, worker_count

    assert Settings().workers == 1
    monkeypatch.setenv("SERVICE_WORKERS", "3")
    assert worker_count(load_settings().workers) == 3
    monkeypatch.setenv("SERVICE_WORKERS", " Auto ")
    settings = load_settings()
    assert settings.workers == "auto"
    assert worker_count(settings.workers) == usable_cores()
    assert 1 <= usable_cores() <= len(os.sched_getaffinity(0))


def test_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """SERVICE_ADMIN_TOKEN="" (as compose passes an unset ${VAR:-}) means no token."""
    monkeypatch.setenv("SERVICE_ADMIN_TOKEN", "")
    monkeypatch.setenv("SERVICE_PORT", "")
    settings = load_settings()
    assert settings.admin_token is None
    assert settings.port == 8080


def test_database_url_selects_postgres_and_hides_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SERVICE_DATABASE_URL selects PostgreSQL; libpq parameters pass through, the password is never shown."""
    url = "postgresql://app:s3cret-pw@db.internal:6543/service?sslmode=require&password=other"
    monkeypatch.setenv("SERVICE_DATABASE_URL", url)
    target = load_settings().target
    assert target.dialect == "postgres"
    assert target.url == url
    assert target.database == "service"
    shown = target.describe() + repr(target) + repr(load_settings())
    assert "s3cret-pw" not in shown
    assert "other" not in shown
    assert "sslmode=require" in target.describe()


def test_database_path_alone_selects_sqlite(tmp_path: Path) -> None:
    """Without a URL the SQLite file is the target."""
    target = Settings(database_path=tmp_path / "x.sqlite3").target
    assert (target.dialect, target.describe()) == (
        "sqlite",
        str(tmp_path / "x.sqlite3"),
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"database_url": "mysql://u:s3cret-pw@h/d"},
            "scheme 'mysql' is not supported",
        ),
        ({"database_url": "s3cret-pw"}, "must be a postgresql:// URL"),
    ],
)
def test_bad_database_url_exits_2_without_echoing_it(
    tmp_path: Path, extra: dict[str, str], expected: str
) -> None:
    """A URL of another scheme: exit 2, one line, and the value (a secret) is not printed."""
    env = service_env(tmp_path / "db.sqlite3", **extra)
    del env["SERVICE_DATABASE_PATH"]
    result = run_cli("serve", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "SERVICE_DATABASE_URL" in lines[0]
    assert expected in lines[0]
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_url_and_path_both_set_exit_2(tmp_path: Path) -> None:
    """SERVICE_DATABASE_URL with SERVICE_DATABASE_PATH is ambiguous: exit 2, one line."""
    env = service_env(
        tmp_path / "db.sqlite3", database_url="postgresql://u:s3cret-pw@127.0.0.1/d"
    )
    result = run_cli("migrate", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "both set" in lines[0]
    assert "s3cret-pw" not in result.stderr
    assert not (tmp_path / "db.sqlite3").exists()


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("s3cret-short", "at least 16 characters"),
        (" s3cret-but-long-enough", "whitespace"),
        ("s3cret-but-long-enough\n", "whitespace"),
        # Headers carry ASCII: no client could ever present these.
        ("s3cret-\u00fcn\u00efc\u00f6d\u00e9-long-enough", "visible ASCII"),
        ("s3cret-\u2028-long-enough", "visible ASCII"),
        ("s3cret-with\tinner-tab", "visible ASCII"),
        ("s3cret with-inner-space", "visible ASCII"),
        ("s3cret-\x7f-long-enough", "visible ASCII"),
    ],
)
def test_bad_admin_token_exits_2_without_echoing_it(
    tmp_path: Path, token: str, expected: str
) -> None:
    """A short, padded or unsendable SERVICE_ADMIN_TOKEN: exit 2, one line, not shown."""
    env = service_env(tmp_path / "db.sqlite3", admin_token=token)
    # Every command reads the settings first; status would not wait on a port.
    result = run_cli("status", env=env, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("configuration error: SERVICE_ADMIN_TOKEN: ")
    assert expected in lines[0]
    assert "s3cret" not in result.stderr + result.stdout
    assert not (tmp_path / "db.sqlite3").exists()


def test_an_images_default_path_yields_to_a_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SERVICE_DEFAULT_DATABASE_PATH (the image's) is the SQLite default, not a setting."""
    monkeypatch.setenv("SERVICE_DEFAULT_DATABASE_PATH", str(tmp_path / "image.sqlite3"))
    assert load_settings().target.describe() == str(tmp_path / "image.sqlite3")
    monkeypatch.setenv("SERVICE_DATABASE_URL", "postgresql://u:pw@h/d")
    assert load_settings().target.dialect == "postgres"


def test_workers_outside_linux_stop_the_start_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SERVICE_WORKERS=2 where the shared write lock cannot exist (not Linux): one
    CRITICAL line saying so, exit 2, nothing opened or bound."""
    from service.cli.serve import cmd_serve

    db_path = tmp_path / "var" / "db.sqlite3"
    monkeypatch.setenv("SERVICE_DATABASE_PATH", str(db_path))
    monkeypatch.setenv("SERVICE_WORKERS", "2")
    monkeypatch.setattr("sys.platform", "darwin")
    with caplog.at_level("CRITICAL"):
        assert cmd_serve(load_settings()) == 2
    assert [r.getMessage() for r in caplog.records] == [
        "SERVICE_WORKERS above 1 needs Linux; on darwin set SERVICE_WORKERS=1"
    ]
    assert not db_path.parent.exists()
