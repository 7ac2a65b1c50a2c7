"""Pydantic request and response models: the HTTP contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# "." and ".." are path segments to every URL library, never keys.
KEY_PATTERN = r"^(?!\.{1,2}$)[A-Za-z0-9._:-]{1,128}$"
MAX_VALUE_BYTES = 65_536

Key = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]


class MetadataIn(BaseModel):
    """Body of PUT /v1/metadata/{key}."""

    model_config = ConfigDict(extra="forbid", strict=True)

    value: str = Field(description="Any UTF-8 text up to 64 KiB")


class MetadataOut(BaseModel):
    """One metadata entry."""

    model_config = ConfigDict(regex_engine="python-re")  # KEY_PATTERN looks ahead

    key: Key
    value: str
    updated_at: datetime = Field(description="Last change, ISO 8601 in UTC")


class MetadataPageOut(BaseModel):
    """A page of entries ordered by key."""

    model_config = ConfigDict(regex_engine="python-re")

    items: list[MetadataOut]
    next: Key | None = Field(
        description="Pass as ?after= for the next page; null at the end"
    )


class MetadataQuery(BaseModel):
    """Query parameters of GET /v1/metadata."""

    model_config = ConfigDict(extra="ignore", regex_engine="python-re")

    limit: int = Field(100, ge=1, le=1000)
    after: Key | None = None


class HealthOut(BaseModel):
    """The process is alive."""

    status: Literal["ok"]


class ReadyOut(BaseModel):
    """Readiness: the schema is current."""

    status: Literal["ready", "not ready"]
    schema_version: int | None
    pending: list[int]
    edited: list[int] = Field(default_factory=list)


class ProblemError(BaseModel):
    """One validation error inside a problem."""

    detail: str
    pointer: str | None = Field(None, description="JSON pointer into the body")
    parameter: str | None = Field(None, description="Query or path parameter")


class ProblemOut(BaseModel):
    """RFC 9457 problem details (application/problem+json)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    request_id: str | None = None
    errors: list[ProblemError] | None = None
