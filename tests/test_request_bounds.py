"""Requests a client shapes badly get a small, exact 4xx: parameters, integers, Host."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import falcon.testing
import pytest

from service.server import Server
from tests.test_api import assert_problem

Client = falcon.testing.TestClient
MAX_ANSWER = 4096


@pytest.mark.parametrize(
    "query",
    [
        "&".join(f"unknown{n}=x" for n in range(20_000)),  # ~250 KB of names
        "n" * 200_000 + "=1",  # one name of 200 KB
        "limit=5&" + "&".join(f"p{n}=1" for n in range(50)),
    ],
    ids=["20000 names", "one huge name", "50 names"],
)
def test_unknown_query_parameters_get_a_bounded_answer(
    client: Client, query: str
) -> None:
    """However many unknown parameters, the 422 names a few and counts the rest."""
    result = client.simulate_get("/v1/metadata", query_string=query)
    problem = assert_problem(result, 422)
    assert len(result.content) <= MAX_ANSWER, len(result.content)
    names = {name for name, _, _ in (p.partition("=") for p in query.split("&"))}
    unknown = len(names - {"limit"})
    assert f"{unknown} unknown" in problem["detail"]
    for error in problem["errors"]:
        assert len(error["parameter"]) <= 64


@pytest.mark.parametrize(
    "value", ["1.0", "1e1", "0x10", "1_0", " 1", "1 ", "+1", "\u0661"]
)
def test_integer_parameters_take_only_integers(client: Client, value: str) -> None:
    """?limit=1.0 (or 1e1, 0x10, 1_0, padded, signed, non-ASCII digits) is 422."""
    result = client.simulate_get("/v1/metadata", params={"limit": value})
    problem = assert_problem(result, 422)
    assert problem["errors"][0]["parameter"] == "limit"


def test_integer_parameters_still_take_integers(client: Client) -> None:
    """?limit=2 and ?limit=002 are the integer 2; ?limit=0 is out of range (422)."""
    for key in ("a", "b", "c"):
        client.simulate_put(f"/v1/metadata/{key}", json={"value": key})
    for value in ("2", "002"):
        result = client.simulate_get("/v1/metadata", params={"limit": value})
        assert result.status_code == 200, result.text
        assert len(result.json["items"]) == 2
    assert_problem(client.simulate_get("/v1/metadata", params={"limit": "0"}), 422)


@pytest.fixture
def server(app: falcon.App) -> Iterator[Server]:  # type: ignore[type-arg]
    """The app on a real waitress server."""
    served = Server(app, host="127.0.0.1", port=0, threads=2, shutdown_timeout=5)
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    yield served
    served.stop()
    thread.join(timeout=10)


def raw_request(server: Server, request: bytes) -> tuple[int, bytes]:
    """Send request bytes on a fresh connection; the status and the body."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            if b"content-length:" in head.lower():
                length = int(
                    head.lower().split(b"content-length:")[1].split(b"\r\n")[0]
                )
                if len(body) >= length:
                    break
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


def test_http11_without_host_is_400(server: Server) -> None:
    """An HTTP/1.1 request without Host is 400 (RFC 9112 §3.2); HTTP/1.0 needs none."""
    status, body = raw_request(
        server, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"
    )
    assert status == 400
    assert "Host" in json.loads(body)["detail"]
    for request in (
        b"GET /healthz HTTP/1.1\r\nHost: example\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.0\r\n\r\n",
    ):
        assert raw_request(server, request)[0] == 200


def test_two_host_headers_are_400(server: Server) -> None:
    """Two Host fields (which a proxy may route by the other one) are 400."""
    status, _ = raw_request(
        server,
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    )
    assert status == 400
