"""CORS over real HTTP: a browser's preflight, then the request it allowed."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from service.cors import parse_origins
from tests.helpers import ServeProcess, run_cli, service_env, start_serve

APP = "https://app.example.com"


def _send(
    server: ServeProcess, method: str, path: str, headers: dict[str, str]
) -> tuple[int, http.client.HTTPMessage]:
    """One request on its own connection; the status and the headers."""
    parts = urlsplit(server.url)
    con = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        con.request(method, path, headers=headers)
        answer = con.getresponse()
        answer.read()
        return answer.status, answer.headers
    finally:
        con.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """serve with SERVICE_CORS_ORIGINS naming two origins."""
    folder = tmp_path_factory.mktemp("cors")
    env = service_env(
        folder / "db.sqlite3", cors_origins=f"{APP}, http://localhost:3000"
    )
    server = start_serve(env)
    yield server
    server.stop()


def test_preflight_allows_the_listed_origin(served: ServeProcess) -> None:
    """OPTIONS with Origin and Access-Control-Request-*: the methods, headers, max age."""
    status, headers = _send(
        served,
        "OPTIONS",
        "/v1/conversations",
        {
            "Origin": APP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == APP
    assert "POST" in headers["Access-Control-Allow-Methods"].split(", ")
    assert headers["Access-Control-Allow-Headers"] == "authorization, content-type"
    assert headers["Access-Control-Max-Age"] == "86400"
    assert "Origin" in headers["Vary"]
    assert headers.get("Access-Control-Allow-Credentials") is None


def test_answers_to_the_origin_expose_what_clients_read(served: ServeProcess) -> None:
    """The request after the preflight (a 401 here) carries the origin and exposes headers."""
    status, headers = _send(served, "GET", "/v1/conversations", {"Origin": APP})
    assert status == 401
    assert headers["Access-Control-Allow-Origin"] == APP
    exposed = {h.strip() for h in headers["Access-Control-Expose-Headers"].split(",")}
    assert {"X-Request-ID", "Location", "ETag", "Retry-After"} <= exposed


def test_another_origin_gets_no_cors_headers(served: ServeProcess) -> None:
    """An origin not listed: no Access-Control-Allow-Origin, so the browser refuses."""
    for method, extra in (
        ("OPTIONS", {"Access-Control-Request-Method": "POST"}),
        ("GET", {}),
    ):
        _, headers = _send(
            served,
            method,
            "/v1/conversations",
            {"Origin": "https://evil.example", **extra},
        )
        assert headers.get("Access-Control-Allow-Origin") is None


def test_cors_is_off_by_default(tmp_path: Path) -> None:
    """Without SERVICE_CORS_ORIGINS no answer carries a CORS header."""
    server = start_serve(service_env(tmp_path / "db.sqlite3"))
    try:
        _, headers = _send(
            server,
            "OPTIONS",
            "/healthz",
            {"Origin": APP, "Access-Control-Request-Method": "GET"},
        )
    finally:
        server.stop()
    assert not [name for name in headers if name.lower().startswith("access-control")]


@pytest.mark.parametrize(
    "value",
    [
        "https://app.example.com/",
        "app.example.com",
        "https://app.example.com/x",
        "*,https://a.b",
    ],
)
def test_a_malformed_origin_stops_the_start(tmp_path: Path, value: str) -> None:
    """An origin no browser sends: exit 2, one line naming SERVICE_CORS_ORIGINS."""
    result = run_cli(
        "status", env=service_env(tmp_path / "db.sqlite3", cors_origins=value)
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("configuration error: SERVICE_CORS_ORIGINS: ")


def test_origins_are_compared_as_browsers_send_them() -> None:
    """Upper case is lowered, duplicates dropped, * stands alone."""
    assert parse_origins(
        ["HTTPS://App.Example.com:8443", "https://app.example.com:8443"]
    ) == ("https://app.example.com:8443",)
    assert parse_origins(["*"]) == ("*",)
