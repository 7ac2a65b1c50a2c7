"""Checks before any load: the stacks answer alike, on tables of one shape."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench import data, procs

TABLES = ("app_metadata", "messages", "memberships", "api_tokens")


def check_shapes(reference: Path, others: dict[str, Path]) -> list[str]:
    """Compare the workloads' tables of each database with reference's."""
    notes = []
    for name, db in others.items():
        for table in TABLES:
            a = data.table_shape(db, table)
            b = data.table_shape(reference, table)
            if a != b:
                notes.append(f"{table} differs: {name} {a} vs baseline {b}")
    return notes


def _time_shape(value: Any) -> str:
    """A timestamp with its digits blanked: the format, not the moment."""
    return re.sub(r"\d", "9", str(value))


def check_api(name: str, server: procs.Server) -> dict[str, Any]:
    """Probe the routes the workloads hit; raise if one answers wrongly.

    Returns the JSON shapes seen (sorted keys, timestamp formats) so the
    caller can check that every stack answers alike.
    """
    port = server.port
    shapes: dict[str, Any] = {}
    status, body = procs.http_get(port, "/healthz")
    if status != 200 or json.loads(body).get("status") != "ok":
        raise RuntimeError(f"{name}: GET /healthz -> {status} {body!r}")
    status, body = procs.http_get(port, "/v1/metadata/" + data.key_name(0))
    if status != 200:
        raise RuntimeError(f"{name}: GET pre-filled key -> {status} {body!r}")
    shapes["get"] = sorted(json.loads(body))
    status, body = procs.http_request(
        port, "PUT", "/v1/metadata/" + data.key_name(1), b'{"value":"probe"}'
    )
    if status != 200:
        raise RuntimeError(f"{name}: PUT pre-filled key -> {status} {body!r}")
    shapes["put"] = sorted(json.loads(body))
    shapes["updated_at"] = _time_shape(json.loads(body).get("updated_at"))
    status, _ = procs.http_get(port, "/v1/metadata/no-such-key")
    if status != 404:
        raise RuntimeError(f"{name}: GET missing key -> {status}, not 404")
    messages = f"/v1/conversations/{data.CONVERSATION_ID}/messages"
    auth = {"Authorization": f"Bearer {data.BENCH_TOKEN}"}
    status, body = procs.http_request(
        port, "POST", messages, b'{"body":"probe"}', headers=auth
    )
    if status != 201:
        raise RuntimeError(f"{name}: POST message -> {status} {body!r}")
    posted = json.loads(body)
    shapes["post"] = sorted(posted)
    shapes["created_at"] = _time_shape(posted.get("created_at"))
    status, body = procs.http_request(
        port, "GET", messages + "?limit=50", None, headers=auth
    )
    page = json.loads(body) if status == 200 else {}
    if status != 200 or len(page.get("items", [])) != 50:
        raise RuntimeError(f"{name}: GET latest 50 -> {status} {body[:200]!r}")
    first = page["items"][0]
    if first.get("id") != posted.get("id"):
        raise RuntimeError(f"{name}: the latest page does not start with the post")
    shapes["latest"] = sorted(page) + sorted(first)
    shapes["next"] = type(page["next"]).__name__
    return shapes


def compare_api(shapes: dict[str, dict[str, Any]]) -> list[str]:
    """Return a note per stack whose answers differ in shape from the first's."""
    names = list(shapes)
    if not names:
        return []
    first = names[0]
    notes = []
    for name in names[1:]:
        for probe, want in shapes[first].items():
            got = shapes[name].get(probe)
            if got != want:
                notes.append(
                    f"JSON shape of {probe} differs: {first} {want} vs {name} {got}"
                )
    return notes
