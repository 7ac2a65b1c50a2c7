"""Path parameters: their types come from the responder's signature.

A URI template's integer ids carry Falcon's converter
(`{conversation_id:int(min=1, max=...)}`): anything else is no route (404).
Every other parameter is text, and its responder says what text it takes
by annotating the parameter with a constrained type (`handle: Handle`,
`key: Key`). From that one annotation come the check (a 422 naming the
parameter, before the responder runs) and the OpenAPI schema. A text
parameter annotated plain `str`, or not at all, stops the app from being
built: its pattern could not be documented, nor the value checked.
"""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Callable
from typing import Any

import falcon
from pydantic import ConfigDict, TypeAdapter, ValidationError

from service.problems import Problem

_PARAMETER = re.compile(r"\{(\w+)(:[^}]*)?\}")
# Patterns such as KEY_PATTERN look ahead, which Rust's regex cannot.
_CONFIG = ConfigDict(regex_engine="python-re")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def text_parameters(template: str) -> list[str]:
    """The names of template's parameters that have no Falcon converter."""
    return [m[1] for m in _PARAMETER.finditer(template) if not m[2]]


def responder_name(method: str, suffix: str | None) -> str:
    """Falcon's name for the responder of method (with the route's suffix)."""
    return f"on_{method.lower()}" + (f"_{suffix}" if suffix else "")


@functools.cache
def adapter(annotation: Any) -> TypeAdapter[Any]:
    """The validator (and JSON schema) of a path parameter's type."""
    return TypeAdapter(annotation, config=_CONFIG)


def parameter_types(
    resource: object, suffix: str | None, template: str
) -> dict[str, dict[str, Any]]:
    """{responder name: {parameter: annotation}} for the template's text parameters.

    Raises:
        TypeError: a responder leaves a text parameter plain str or unannotated.
    """
    names = text_parameters(template)
    found: dict[str, dict[str, Any]] = {}
    if not names:
        return found
    for method in METHODS:
        name = responder_name(method, suffix)
        responder = getattr(type(resource), name, None)
        if responder is None:
            continue
        hints = typing.get_type_hints(responder, include_extras=True)
        types = {}
        for parameter in names:
            annotation = hints.get(parameter, str)
            if annotation is str:
                raise TypeError(
                    f"{type(resource).__name__}.{name}: annotate the path parameter "
                    f"{parameter!r} with a constrained type (e.g. Handle, Key), so "
                    "it is checked and documented"
                )
            types[parameter] = annotation
        found[name] = types
    return found


def _guarded(
    responder: Callable[..., None], types: dict[str, Any]
) -> Callable[..., None]:
    # The adapter's own validator: TypeAdapter.validate_python's Python frame
    # costs as much as the check (a GET of one key is the hot path).
    checks = [
        (
            name,
            adapter(annotation).validator,
            parameter_schema(annotation).get("description"),
        )
        for name, annotation in types.items()
    ]

    def guarded(req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        for name, check, rule in checks:
            try:
                check.validate_python(params[name])
            except ValidationError as ex:
                first = ex.errors(include_url=False, include_input=False)[0]
                raise Problem(
                    422,
                    f"{name} in the path must be {rule or first['msg']}",
                    errors=[{"detail": first["msg"], "parameter": name}],
                ) from ex
        responder(req, resp, **params)

    return guarded


def guard(resource: object, suffix: str | None, template: str) -> None:
    """Check the text path parameters before each responder of the route runs."""
    for name, types in parameter_types(resource, suffix, template).items():
        setattr(resource, name, _guarded(getattr(resource, name), types))


def parameter_schema(annotation: Any) -> dict[str, Any]:
    """The OpenAPI schema of a path parameter's type."""
    return adapter(annotation).json_schema()
