"""create_app(): error handling, middleware and the route table."""

from __future__ import annotations

from typing import Any

import falcon
import orjson

from db import Database, open_database
from service import openapi, problems
from service.auth import Authenticator
from service.config import Settings
from service.metrics import Metrics, MetricsResource
from service.middleware import DbSession, RequestContext
from service.resources.conversations import Conversations, Members, Messages, Search
from service.resources.health import Health, Ready
from service.resources.metadata import Metadata
from service.resources.users import Me, Tokens, Users
from service.routing import complete_methods, install_converters


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
    # orjson encodes response bodies in a fraction of the stdlib's time.
    json_handler = falcon.media.JSONHandler(dumps=orjson.dumps, loads=orjson.loads)
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = json_handler
    app.req_options.media_handlers[falcon.MEDIA_JSON] = json_handler
    # Route /v1/metadata/ and /v1/metadata alike; keys never end in '/'.
    app.req_options.strip_url_path_trailing_slash = True
    install_converters(app)
    problems.register(app, on_busy=metrics.busy.inc)

    auth = Authenticator(database.messaging, settings.admin_token)
    metadata = Metadata(
        database.store, settings.max_body_bytes, auth.guard_operator_data
    )
    messaging, max_body = database.messaging, settings.max_body_bytes
    users = Users(messaging, auth, max_body)
    conversations = Conversations(messaging, auth, max_body)
    members = Members(messaging, auth, max_body)
    messages = Messages(messaging, auth, max_body)
    routes: list[openapi.Route] = [
        ("/healthz", Health(), None),
        ("/readyz", Ready(database), None),
        ("/metrics", MetricsResource(metrics), None),
        ("/v1/metadata", metadata, None),
        ("/v1/metadata/{key}", metadata, "item"),
        ("/v1/users", users, None),
        ("/v1/users/{handle}/tokens", users, "tokens"),
        ("/v1/tokens/{token_id:id}", Tokens(messaging, auth), None),
        ("/v1/me", Me(auth), None),
        ("/v1/conversations", conversations, None),
        ("/v1/conversations/{conversation_id:id}", conversations, "item"),
        ("/v1/conversations/{conversation_id:id}/members", members, None),
        ("/v1/conversations/{conversation_id:id}/members/{handle}", members, "item"),
        ("/v1/conversations/{conversation_id:id}/messages", messages, None),
        (
            "/v1/conversations/{conversation_id:id}/messages/{message_id:id}",
            messages,
            "item",
        ),
        ("/v1/search", Search(messaging, auth), None),
    ]
    routes.append(("/openapi.json", openapi.OpenApi(routes), None))
    for template, resource, suffix in routes:
        complete_methods(resource, suffix)
        app.add_route(template, resource, suffix=suffix)
    return app
