"""Examples for the OpenAPI document, built from the models' own.

Each field of a request or response model may carry `examples=[...]`;
an operation's example body is assembled from them (and from defaults,
enums and types where a field has none), so every operation shows one
and Redocly and Spectral check it against its schema.
"""

from __future__ import annotations

from typing import Any


def example_of(schema: dict[str, Any], schemas: dict[str, Any], depth: int = 0) -> Any:
    """A value the schema accepts, from its examples, defaults and types."""
    if depth > 8:
        return None
    if "$ref" in schema:
        return example_of(schemas[schema["$ref"].rsplit("/", 1)[1]], schemas, depth + 1)
    if schema.get("examples"):
        return schema["examples"][0]
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for union in ("anyOf", "oneOf"):
        if union in schema:
            options = [s for s in schema[union] if s.get("type") != "null"]
            return example_of((options or schema[union])[0], schemas, depth + 1)
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            name: example_of(sub, schemas, depth + 1)
            for name, sub in properties.items()
            if name in schema.get("required", ()) or "examples" in sub
        }
    if kind == "array":
        return [example_of(schema.get("items", {}), schemas, depth + 1)]
    return {"integer": 1, "number": 1.0, "boolean": True, "null": None}.get(
        str(kind), "text"
    )


def add_examples(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Give each body of the operation an example, unless it has one."""
    bodies = [operation.get("requestBody", {})]
    bodies += list(operation.get("responses", {}).values())
    for body in bodies:
        for media in body.get("content", {}).values():
            if "schema" in media and "example" not in media:
                media["example"] = example_of(media["schema"], schemas)
