"""Query parameters and JSON values shared by the resources."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

import falcon
from pydantic import BaseModel, ValidationError

from service.problems import Problem, validation_errors

ModelT = TypeVar("ModelT", bound=BaseModel)


def read_query(req: falcon.Request, model: type[ModelT]) -> ModelT:
    """The query string as model; 422 naming the parameter otherwise."""
    try:
        return model.model_validate(
            {
                name: req.params[name]
                for name in model.model_fields
                if name in req.params
            }
        )
    except ValidationError as ex:
        raise Problem(
            422, "invalid query parameters", errors=validation_errors(ex, "query")
        ) from ex


def utc_iso(moment: datetime) -> str:
    """An aware datetime as ISO 8601 UTC with microseconds and a Z."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat("T", "microseconds")[:-6] + "Z"
