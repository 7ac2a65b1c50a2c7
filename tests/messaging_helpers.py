"""Helpers for the messaging tests: an admin token, users with tokens."""

from __future__ import annotations

from typing import Any

import falcon.testing

ADMIN_TOKEN = "test-admin-token-0123456789"  # noqa: S105 - test fixture
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

Client = falcon.testing.TestClient


def bearer(token: str) -> dict[str, str]:
    """An Authorization header for token."""
    return {"Authorization": f"Bearer {token}"}


def make_user(client: Client, handle: str) -> str:
    """Create a user and return a fresh API token for it."""
    created = client.simulate_post(
        "/v1/users",
        json={"handle": handle, "display_name": handle.title()},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    issued = client.simulate_post(f"/v1/users/{handle}/tokens", headers=ADMIN)
    assert issued.status_code == 201, issued.text
    token: str = issued.json["token"]
    return token


def start(client: Client, token: str, members: list[str], title: str = "t") -> int:
    """Start a conversation and return its id."""
    result = client.simulate_post(
        "/v1/conversations",
        json={"title": title, "members": members},
        headers=bearer(token),
    )
    assert result.status_code == 201, result.text
    conversation_id: int = result.json["id"]
    return conversation_id


def post(client: Client, token: str, conversation_id: int, body: str) -> Any:
    """Post a message; returns its JSON."""
    result = client.simulate_post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"body": body},
        headers=bearer(token),
    )
    assert result.status_code == 201, result.text
    return result.json
