"""How the OpenAPI document describes a text/event-stream answer (GET /v1/events).

OpenAPI 3.1 has no schema for the events inside a stream: the 200 is a
string of text/event-stream, with an example session, the Last-Event-ID
header that resumes it, a table of the event types in the description,
and `x-event-types` mapping each type to the component schema of its
data (the same models the REST answers use), which the schemas section
holds.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

EXAMPLE = (
    "retry: 3000\n\n"
    "id: 41\n\n"
    "id: 42\nevent: message.posted\ndata: "
    '{"id":7,"conversation_id":1,"author":"ann","body":"Lunch on Friday?",'
    '"created_at":"2026-11-29T03:41:10.120311Z"}\n\n'
    ": keep-alive\n\n"
)
LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "description": "The id of the last event received: the stream resumes right "
    "after it (EventSource sends it when it reconnects). An id past the retention "
    "window, or one this database never issued, opens the stream with a reset event",
    "schema": {"type": "string", "maxLength": 64, "examples": ["42"]},
}
STREAM_DESCRIPTION = (
    "Server-Sent Events: each event has an `id:` (its position, the same on every "
    "server), an `event:` type and one `data:` line of JSON; comments (`:`) are "
    "heartbeats. The stream stays open until the client closes it, the token is "
    "revoked, the client reads too slowly, or the server shuts down (with a "
    "`retry:` hint); reconnect with Last-Event-ID."
)


def _add_schema(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    """model's JSON schema (and those it refers to) as components, unless there."""
    if model.__name__ in schemas:
        return
    schema = model.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )
    for name, nested in schema.pop("$defs", {}).items():
        schemas.setdefault(name, nested)
    schemas[model.__name__] = schema


def document_stream(
    operation: dict[str, Any],
    schemas: dict[str, Any],
    types: dict[str, type[BaseModel]],
) -> None:
    """Describe operation's 200 as a text/event-stream of these event types."""
    rows = []
    refs = {}
    for kind, model in types.items():
        _add_schema(schemas, model)
        refs[kind] = {"$ref": f"#/components/schemas/{model.__name__}"}
        summary = (model.__doc__ or "").strip().splitlines()[0]
        rows.append(f"| `{kind}` | `{model.__name__}` | {summary} |")
    ok = operation["responses"]["200"]
    ok["description"] = "The stream"
    ok["content"] = {
        "text/event-stream": {
            "schema": {"type": "string", "description": STREAM_DESCRIPTION},
            "example": EXAMPLE,
            "x-event-types": refs,
        }
    }
    operation.setdefault("parameters", []).append(LAST_EVENT_ID)
    table = "\n".join(["| event | data | |", "| --- | --- | --- |", *rows])
    operation["description"] = f"{operation.get('description', '')}\n\n{table}".strip()
