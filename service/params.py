"""Query parameters and JSON values shared by the resources."""

from __future__ import annotations

import functools
import re
import typing
from datetime import UTC, datetime
from typing import TypeVar

import falcon
import orjson
from pydantic import BaseModel, ValidationError

from service.problems import Problem, validation_errors

ModelT = TypeVar("ModelT", bound=BaseModel)


# An integer parameter is ASCII digits with an optional minus, nothing else:
# int() and pydantic's lax mode would also take "1.0", "1_0", " 1" or "+1".
_INTEGER = re.compile(r"-?[0-9]{1,30}")
# An answer names this many unknown parameters, each cut to this length, and
# counts the rest: a 200 KB query string never gets a bigger answer.
MAX_NAMED = 5
MAX_NAME = 40


@functools.cache
def _fields(model: type[BaseModel]) -> tuple[frozenset[str], frozenset[str]]:
    """The parameter names model takes, and those of them that are integers."""
    names, integers = set(), set()
    for name, field in model.model_fields.items():
        shown = field.alias or name
        names.add(shown)
        if int in (typing.get_args(field.annotation) or (field.annotation,)):
            integers.add(shown)
    return frozenset(names), frozenset(integers)


def _shown(name: str) -> str:
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"


def read_query(req: falcon.Request, model: type[ModelT]) -> ModelT:
    """The query string as model; 422 naming the parameter otherwise.

    Unknown parameters (for a model that forbids extras) are counted and
    the first MAX_NAMED named; integers must be written as integers.
    Everything else is validated strictly: the values are strings.
    """
    names, integers = _fields(model)
    params = req.params
    if model.model_config.get("extra") == "forbid":
        unknown = [name for name in params if name not in names]
        if unknown:
            raise Problem(
                422,
                f"{len(unknown)} unknown query parameter(s); this route takes "
                + (", ".join(sorted(names)) or "none"),
                errors=[
                    {"detail": "unknown parameter", "parameter": _shown(name)}
                    for name in unknown[:MAX_NAMED]
                ],
            )
    values = {
        name: int(value)
        if name in integers and isinstance(value, str) and _INTEGER.fullmatch(value)
        else value
        for name, value in params.items()
    }
    try:
        return model.model_validate(values, strict=True)
    except ValidationError as ex:
        raise Problem(
            422, "invalid query parameters", errors=validation_errors(ex, "query")
        ) from ex


def utc_iso(moment: datetime) -> str:
    """An aware datetime as ISO 8601 UTC with six fraction digits and a Z.

    orjson formats a UTC datetime in C at a third of isoformat()'s cost (a
    page of 50 messages has 50 of them), but leaves out a zero fraction:
    that case goes through isoformat(), so every timestamp has the same shape.
    """
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    if moment.microsecond:
        return orjson.dumps(moment, option=orjson.OPT_UTC_Z)[1:-1].decode()
    return moment.isoformat("T", "microseconds")[:-6] + "Z"
