"""The metadata API: operator key/value pairs under /v1/metadata."""

from __future__ import annotations

import falcon
from spectree import Response

from db.domain.metadata import Metadata as MetadataStore
from db.domain.records import MetadataRecord
from service.bodies import check_utf8_size, read_json
from service.fields import is_key
from service.openapi import Route, documented
from service.params import read_query, utc_iso
from service.problems import Problem
from service.resources import Context
from service.schemas import (
    MAX_VALUE_BYTES,
    MetadataIn,
    MetadataOut,
    MetadataPageOut,
    MetadataQuery,
    ProblemOut,
)


def _check_key(key: str) -> str:
    if not is_key(key):
        raise Problem(
            422,
            "key must be 1-128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-', and not '.' or '..'",
            errors=[{"detail": "invalid key", "parameter": "key"}],
        )
    return key


def _out(record: MetadataRecord) -> dict[str, str]:
    return {
        "key": record.key,
        "value": record.value,
        "updated_at": utc_iso(record.updated_at),
    }


class Metadata:
    """GET /v1/metadata and GET/PUT/DELETE /v1/metadata/{key}."""

    def __init__(self, store: MetadataStore, max_body_bytes: int) -> None:
        self._store = store
        self._max_body = max_body_bytes

    @documented(
        auth="operator",
        query=MetadataQuery,
        tags=["metadata"],
        resp=Response(
            HTTP_200=MetadataPageOut, HTTP_401=ProblemOut, HTTP_422=ProblemOut
        ),
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List entries ordered by key, paged with ?limit= and ?after=."""
        query = read_query(req, MetadataQuery)
        page = self._store.page(query.limit, query.after)
        resp.media = {"items": [_out(r) for r in page.items], "next": page.next}

    @documented(
        auth="operator",
        tags=["metadata"],
        resp=Response(
            HTTP_200=MetadataOut,
            HTTP_401=ProblemOut,
            HTTP_404=ProblemOut,
            HTTP_422=ProblemOut,
        ),
    )
    def on_get_item(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        """Return one entry or 404."""
        resp.media = _out(self._store.get(_check_key(key)))

    @documented(
        auth="operator",
        json=MetadataIn,
        tags=["metadata"],
        resp=Response(
            HTTP_200=MetadataOut,
            HTTP_201=MetadataOut,
            HTTP_400=ProblemOut,
            HTTP_401=ProblemOut,
            HTTP_413=ProblemOut,
            HTTP_415=ProblemOut,
            HTTP_422=ProblemOut,
            HTTP_503=ProblemOut,
        ),
    )
    def on_put_item(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        """Create (201) or replace (200) one entry."""
        _check_key(key)
        body = read_json(req, MetadataIn, self._max_body)
        check_utf8_size(body.value, "value", MAX_VALUE_BYTES)
        record, created = self._store.put(key, body.value)
        resp.media = _out(record)
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200

    @documented(
        auth="operator",
        tags=["metadata"],
        resp=Response(
            "HTTP_204",
            HTTP_401=ProblemOut,
            HTTP_404=ProblemOut,
            HTTP_422=ProblemOut,
            HTTP_503=ProblemOut,
        ),
    )
    def on_delete_item(
        self, req: falcon.Request, resp: falcon.Response, key: str
    ) -> None:
        """Delete one entry: 204, or 404 when absent."""
        self._store.delete(_check_key(key))
        resp.status = falcon.HTTP_204


def routes(context: Context) -> list[Route]:
    """/v1/metadata and /v1/metadata/{key}: operator data (the admin token when set)."""
    metadata = Metadata(context.database.metadata, context.max_body)
    return [
        ("/v1/metadata", metadata, None),
        ("/v1/metadata/{key}", metadata, "item"),
    ]
