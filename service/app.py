"""create_app(): error handling, middleware and the route table."""

from __future__ import annotations

from typing import Any

import falcon

from db import Database, open_database
from service import openapi, problems
from service.config import Settings
from service.metrics import Metrics, MetricsResource
from service.middleware import DbSession, RequestContext
from service.resources.health import Health, Ready
from service.resources.metadata import Metadata


def open_for(settings: Settings) -> Database:
    """Open (migrate, map, check) the database the settings name."""
    return open_database(
        settings.database_path,
        migrate=settings.migrate,
        migrations_source=settings.migrations_path,
        synchronous=settings.synchronous,
        write_lock_timeout=settings.write_lock_timeout,
    )


def create_app(settings: Settings, *, database: Database | None = None) -> falcon.App:  # type: ignore[type-arg]
    """Build the WSGI app; opens (migrates, checks) the database unless given one."""
    if database is None:
        database = open_for(settings)
    metrics = Metrics()
    database.on_write_lock_wait(metrics.observe_lock_wait)
    metrics.schema_version.set(database.current_state().version or 0)

    middleware: list[Any] = [RequestContext(metrics), DbSession()]
    app = falcon.App(middleware=middleware)
    # Route /v1/metadata/ and /v1/metadata alike; keys never end in '/'.
    app.req_options.strip_url_path_trailing_slash = True
    problems.register(app, on_busy=metrics.busy.inc)

    metadata = Metadata(database.store, settings.max_body_bytes)
    routes: list[openapi.Route] = [
        ("/healthz", Health(), None),
        ("/readyz", Ready(database), None),
        ("/metrics", MetricsResource(metrics), None),
        ("/v1/metadata", metadata, None),
        ("/v1/metadata/{key}", metadata, "item"),
    ]
    routes.append(("/openapi.json", openapi.OpenApi(routes), None))
    for template, resource, suffix in routes:
        app.add_route(template, resource, suffix=suffix)
    return app
