"""create_app(): error handling, middleware and the routes of every resource."""

from __future__ import annotations

from typing import Any

import falcon
import orjson

from db.database import Database, engine_for, open_database
from service import openapi, problems, resources
from service.auth import Authenticator
from service.bodies import request_class
from service.config import Settings
from service.cors import CorsPolicy
from service.docs_page import BUNDLE, DocsPage
from service.events.hub import Hub
from service.metrics import Metrics, MetricsResource
from service.middleware import DbSession, RequestContext
from service.paths import guard
from service.rendering import check_models
from service.routing import complete_methods
from service.workers.board import Board

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def open_for(settings: Settings, *, processes: int = 1) -> Database:
    """Open (migrate, map, check) the database the settings name.

    processes: how many worker processes will be forked to serve from it.
    """
    engine = engine_for(
        settings.target,
        synchronous=settings.synchronous,
        threads=settings.threads,
        lock_timeout=settings.write_lock_timeout,
        statement_timeout=settings.statement_timeout,
        processes=processes,
    )
    return open_database(
        engine=engine,
        migrate=settings.migrate,
        migrations_source=settings.migrations_path,
        synchronous=settings.synchronous,
        write_lock_timeout=settings.write_lock_timeout,
    )


def requirements(routes: list[openapi.Route]) -> dict[tuple[str, str], Any]:
    """(URI template, method) -> the responder's declared auth requirement."""
    return {
        (template, method): openapi.requirement(resource, method, suffix)
        for template, resource, suffix in routes
        for method in METHODS
    }


def routes_for(context: resources.Context, metrics: Metrics) -> list[openapi.Route]:
    """Every route: the resource modules', /metrics and /openapi.json."""
    routes = resources.collect(context)
    routes.append(("/metrics", MetricsResource(metrics.exposition), None))
    routes.append(("/openapi.json", openapi.OpenApi(routes), None))
    docs = DocsPage()
    routes.append(("/docs", docs, None))
    routes.append((f"/docs/{BUNDLE}", docs, "bundle"))
    return routes


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    hub: Hub | None = None,
    workers: Board | None = None,
) -> falcon.App:  # type: ignore[type-arg]
    """Build the WSGI app; opens (migrates, checks) the database unless given one.

    hub holds the event streams (GET /v1/events); one is made when not given.
    workers: the supervisor's board, in a worker process: /readyz reports
    every worker, and /metrics every worker's metrics.
    """
    if database is None:
        database = open_for(settings)
    metrics = Metrics(multiprocess=workers is not None)
    database.on_write_lock_wait(metrics.observe_lock_wait)
    metrics.schema_version.set(database.current_state().version or 0)
    if hub is None:
        hub = Hub(database, settings)
    hub.metrics = metrics
    auth = Authenticator(database.users, database.token_uses, settings.admin_token)
    routes = routes_for(
        resources.Context(settings, database, auth, hub, workers), metrics
    )
    events = database.events

    def written(committed: bool) -> None:
        # An event committed here: the stream thread reads it now, not at its poll.
        if events.take_written() and committed:
            hub.poke()

    middleware: list[Any] = [
        RequestContext(metrics),
        DbSession(database, auth.check, requirements(routes), auth.confirm, written),
    ]
    if settings.cors_origins:
        # First, so that its process_response runs last, on the final answer.
        middleware.insert(0, CorsPolicy(settings.cors_origins))
    app = falcon.App(
        middleware=middleware,
        request_type=request_class(settings.max_body_bytes),
    )
    # orjson encodes response bodies in a fraction of the stdlib's time.
    json_handler = falcon.media.JSONHandler(dumps=orjson.dumps, loads=orjson.loads)
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = json_handler
    app.req_options.media_handlers[falcon.MEDIA_JSON] = json_handler
    # Route /v1/metadata/ and /v1/metadata alike; keys never end in '/'.
    app.req_options.strip_url_path_trailing_slash = True
    problems.register(app, on_busy=metrics.busy.inc)
    check_models(resources.models())
    for template, resource, suffix in routes:
        guard(resource, suffix, template)
        complete_methods(resource, suffix)
        app.add_route(template, resource, suffix=suffix)
    return app
