"""The metadata API: operator key/value pairs under /v1/metadata."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import falcon
from pydantic import BaseModel, ConfigDict, Field
from spectree import Response

from db.domain.metadata import Metadata as MetadataStore
from db.domain.records import MetadataPage, MetadataRecord
from service.bodies import check_utf8_size, read_json
from service.fields import AnyText, Key
from service.openapi import Route, documented
from service.params import read_query
from service.rendering import send, send_one
from service.resources import Context

MAX_VALUE_BYTES = 65_536


class MetadataIn(BaseModel):
    """Body of PUT /v1/metadata/{key}."""

    model_config = ConfigDict(extra="forbid", strict=True)

    value: AnyText = Field(
        description="Any UTF-8 text up to 64 KiB (413 above) but U+0000",
        examples=["demo"],
    )


class MetadataOut(BaseModel):
    """One metadata entry."""

    __record__: ClassVar[type] = MetadataRecord
    model_config = ConfigDict(regex_engine="python-re")  # KEY_PATTERN looks ahead

    key: Key = Field(examples=["app.name"])
    value: str = Field(examples=["demo"])
    updated_at: datetime = Field(
        description="Last change, ISO 8601 in UTC",
        examples=["2026-11-29T02:49:17.350256Z"],
    )


class MetadataPageOut(BaseModel):
    """A page of entries ordered by key."""

    __record__: ClassVar[type] = MetadataPage
    model_config = ConfigDict(regex_engine="python-re")

    items: list[MetadataOut]
    next: Key | None = Field(
        description="Pass as ?after= for the next page; null at the end",
        examples=[None],
    )


class MetadataQuery(BaseModel):
    """Query parameters of GET /v1/metadata."""

    # Unknown parameters are refused (422): a typo such as ?limt= never goes unnoticed.
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")

    limit: int = Field(100, ge=1, le=1000)
    after: Key | None = None


class Metadata:
    """GET /v1/metadata and GET/PUT/DELETE /v1/metadata/{key}."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    @documented(
        auth="operator",
        query=MetadataQuery,
        tags=["metadata"],
        resp=Response(HTTP_200=MetadataPageOut),
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List entries ordered by key, paged with ?limit= and ?after=."""
        query = read_query(req, MetadataQuery)
        send(resp, MetadataPageOut, self._store.page(query.limit, query.after))

    @documented(
        auth="operator",
        etag=True,
        tags=["metadata"],
        resp=Response(HTTP_200=MetadataOut),
    )
    def on_get_item(self, req: falcon.Request, resp: falcon.Response, key: Key) -> None:
        """Return one entry or 404."""
        send_one(req, resp, MetadataOut, self._store.get(key))

    @documented(
        auth="operator",
        json=MetadataIn,
        tags=["metadata"],
        resp=Response(HTTP_200=MetadataOut, HTTP_201=MetadataOut),
    )
    def on_put_item(self, req: falcon.Request, resp: falcon.Response, key: Key) -> None:
        """Create (201) or replace (200) one entry."""
        body = read_json(req, MetadataIn)
        check_utf8_size(body.value, "value", MAX_VALUE_BYTES)
        record, created = self._store.put(key, body.value)
        send(resp, MetadataOut, record, falcon.HTTP_201 if created else falcon.HTTP_200)
        if created:
            resp.location = req.path

    @documented(auth="operator", tags=["metadata"], resp=Response("HTTP_204"))
    def on_delete_item(
        self, req: falcon.Request, resp: falcon.Response, key: Key
    ) -> None:
        """Delete one entry: 204, or 404 when absent."""
        self._store.delete(key)
        resp.status = falcon.HTTP_204


def routes(context: Context) -> list[Route]:
    """/v1/metadata and /v1/metadata/{key}: operator data (the admin token when set)."""
    metadata = Metadata(context.database.metadata)
    return [
        ("/v1/metadata", metadata, None),
        ("/v1/metadata/{key}", metadata, "item"),
    ]
