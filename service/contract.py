"""What the OpenAPI document says beyond spectree's output, derived.

refine() completes spectree's document so it is the whole contract:
typed path parameters, problem+json errors, the response headers the
server sends (X-Request-ID always, WWW-Authenticate on 401, Retry-After
on 503 and 507, Location on 201, ETag on conditional GETs), an example
for every request and response body (built from the models' field
examples), links from each 201 to what can be done with the new resource,
and the server. Nothing here is written per route.
"""

from __future__ import annotations

import json
import re
from typing import Any

from service.examples import add_examples
from service.paths import parameter_schema

DESCRIPTION = (
    "A chat backend: users and API tokens (admin), conversations with members, "
    "messages and full-text search. Every error is application/problem+json "
    "(RFC 9457)."
)
LICENSE = {"name": "MIT", "identifier": "MIT"}
CONTACT = {
    "name": "service-foundation",
    "url": "https://github.com/service-foundation/service-foundation",
}
# The shipped tags' descriptions; a new tag takes the first line of its
# resource module's docstring (openapi.build_document passes those in).
TAGS = {
    "admin": "Users and API tokens: SERVICE_ADMIN_TOKEN only",
    "conversations": "A user's conversations and their members",
    "health": "Liveness and readiness probes",
    "messages": "Messages in a user's conversations, and search over them",
    "metadata": "The operator's key/value pairs",
    "operations": "The API document and the Prometheus metrics",
    "users": "The calling user",
}
WHO = {
    None: "Open to anyone.",
    "user": "Needs a user's API token (401 otherwise).",
    "admin": "Needs SERVICE_ADMIN_TOKEN (401 otherwise; 404 while none is set).",
    "operator": "Needs SERVICE_ADMIN_TOKEN when one is set (401 otherwise).",
}
SERVERS = [{"url": "/", "description": "This server (relative to the document)"}]
HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "required": True,
        "description": "This request's id: the client's X-Request-ID when it is "
        "1-128 of A-Z a-z 0-9 . _ : -, else a new one. Also in problems and logs.",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
    },
    "WWW-Authenticate": {
        "required": True,
        "description": "The bearer challenge (RFC 6750)",
        "schema": {"type": "string", "examples": ['Bearer realm="service"']},
    },
    "Retry-After": {
        "required": True,
        "description": "Seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Location": {
        "required": True,
        "description": "The URL of the resource created",
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "ETag": {
        "required": True,
        "description": "The representation's entity tag; send it back as "
        "If-None-Match for a 304",
        "schema": {"type": "string"},
    },
}
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "ETags of representations you have: 304 when one is current",
    "schema": {"type": "string"},
}


def _header(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/headers/{name}"}


def _headers_for(status: str, conditional: bool) -> dict[str, Any]:
    """The headers the server sends with an answer of this status."""
    names = ["X-Request-ID"]
    if status == "401":
        names.append("WWW-Authenticate")
    if status in ("429", "503", "507"):
        names.append("Retry-After")
    if status == "201":
        names.append("Location")
    if conditional and status in ("200", "304"):
        names.append("ETag")
    return {name: _header(name) for name in names}


def _field_for(
    parameter: str, response: dict[str, Any], schemas: dict[str, Any]
) -> str | None:
    """The field of a 201 body that holds the new resource's path parameter."""
    content = response.get("content", {}).get("application/json", {})
    ref = content.get("schema", {}).get("$ref", "")
    properties = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
    if parameter in properties:
        return parameter
    if parameter.endswith("_id") and "id" in properties:
        return "id"
    return None


def _created_under(
    path: str, method: str, paths: dict[str, Any]
) -> list[tuple[str, str | None]]:
    """(path, its new parameter) of each route on what a 201 of method on path made.

    A POST makes `path/{new}` (and what nests under it); a PUT makes path itself.
    """
    found: list[tuple[str, str | None]] = []
    for target in paths:
        nested = re.match(re.escape(path) + r"/\{(\w+)\}(?:/|$)", target)
        if method == "post" and nested:
            found.append((target, nested[1]))
        elif method == "put" and target == path:
            found.append((target, None))
    return found


def _links(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    """From each 201, links to the operations on the resource it created."""
    for path, operations in paths.items():
        known = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in operations.items():
            created = operation.get("responses", {}).get("201")
            if created is None:
                continue
            links = {}
            for target, new in _created_under(path, method, paths):
                field = _field_for(new, created, schemas) if new else None
                if new and field is None:
                    continue  # the body does not say the new id
                names = re.findall(r"\{(\w+)\}", target)
                if set(names) - known - {new}:
                    continue  # needs an id nothing here gives
                parameters = {
                    n: f"$request.path.{n}"
                    if n in known
                    else f"$response.body#/{field}"
                    for n in names
                }
                for target_op in paths[target].values():
                    links[target_op["operationId"]] = {
                        "operationId": target_op["operationId"],
                        "parameters": parameters,
                    }
            if links:
                created["links"] = links


def _used_schemas(document: dict[str, Any]) -> set[str]:
    """The component schemas the paths refer to, directly or through others."""
    schemas = document["components"]["schemas"]
    refer = re.compile(r'"#/components/schemas/(\w+)"')
    found: set[str] = set()
    pending = refer.findall(json.dumps(document["paths"]))
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending += refer.findall(json.dumps(schemas.get(name, {})))
    return found


def refine(
    document: dict[str, Any],
    *,
    security_scheme: str,
    who: dict[str, Any],
    tag_docs: dict[str, str],
    path_types: dict[tuple[str, str], Any],
    etag_operations: set[str],
    no_422: set[str],
) -> dict[str, Any]:
    """Complete spectree's document (see the module)."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[security_scheme] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A user's API token, or SERVICE_ADMIN_TOKEN for admin routes",
    }
    components["headers"] = HEADERS
    schemas = components.setdefault("schemas", {})
    document["servers"] = SERVERS
    document["info"].update(license=LICENSE, contact=CONTACT)
    # spectree escapes regex characters in literal segments ("/openapi\\.json").
    document["paths"] = {
        re.sub(r"\\(.)", r"\1", path): operations
        for path, operations in document.get("paths", {}).items()
    }
    for path, operations in document["paths"].items():
        for operation in operations.values():
            conditional = operation.get("operationId") in etag_operations
            if not operation.get("description"):
                operation["description"] = WHO[who.get(operation["operationId"])]
            if operation.get("operationId") in no_422:
                operation.get("responses", {}).pop("422", None)
            for parameter in operation.get("parameters", []):
                _parameter(path, parameter, path_types)
            if conditional:
                operation.setdefault("parameters", []).append(_IF_NONE_MATCH)
            for status, response in operation.get("responses", {}).items():
                _problem_media(response)
                if status == "304":
                    response["description"] = "Not Modified: your copy is current"
                response["headers"] = _headers_for(status, conditional)
            add_examples(operation, schemas)
    _links(document["paths"], schemas)
    used = _used_schemas(document)
    components["schemas"] = {n: s for n, s in schemas.items() if n in used}
    tags = sorted({t for _, _, op in _operations(document) for t in op.get("tags", [])})
    described = {**tag_docs, **TAGS}
    document["tags"] = [
        {"name": t, "description": described[t]} if t in described else {"name": t}
        for t in tags
    ]
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def _parameter(
    path: str, parameter: dict[str, Any], path_types: dict[tuple[str, str], Any]
) -> None:
    if parameter["in"] == "path" and (path, parameter["name"]) in path_types:
        parameter["schema"] = parameter_schema(path_types[(path, parameter["name"])])
        return
    schema = parameter.get("schema", {})
    # Falcon's int(min=, max=) converter, as spectree renders it (bounds as
    # strings, every integer int32), made exact.
    if schema.get("type") == "integer":
        for bound in ("minimum", "maximum"):
            if isinstance(schema.get(bound), str):
                schema[bound] = int(schema[bound])
        if schema.get("maximum", 0) > 2**31 - 1:
            schema["format"] = "int64"


def _problem_media(response: dict[str, Any]) -> None:
    content = response.get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    if schema.get("$ref", "").endswith("/ProblemOut"):
        content["application/problem+json"] = content.pop("application/json")
