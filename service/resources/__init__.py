"""HTTP resources, one module per URL family; each module declares its routes.

A module here defines `routes(context) -> list[Route]`: the URI templates
it serves, the resource objects (built from the context's collaborators)
and their suffixes. create_app() collects every module's routes, so
adding a resource is adding a module: nothing else to register. A module
without routes() stops the app from being built (a test builds it).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType

from pydantic import BaseModel

from db.database import Database
from service import schemas
from service.auth import Authenticator
from service.config import Settings
from service.events.hub import Hub
from service.openapi import Route
from service.workers.board import Board

# Path ids: SQL's 64-bit integers. Anything else matches no route (404),
# however many digits it has.
ID = "int(min=1, max=9223372036854775807)"


@dataclass(frozen=True)
class Context:
    """What resources are built from."""

    settings: Settings
    database: Database
    auth: Authenticator
    # The event streams of this process (GET /v1/events); made when not given.
    hub: Hub | None = None
    # The supervisor's board in a worker process (SERVICE_WORKERS > 1).
    workers: Board | None = None


def _modules() -> list[ModuleType]:
    return [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
    ]


def models() -> list[type[BaseModel]]:
    """Every pydantic model the resource modules and service.schemas define."""
    return [
        value
        for module in [schemas, *_modules()]
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == module.__name__
    ]


def collect(context: Context) -> list[Route]:
    """Every resource module's routes, in module-name order."""
    found: list[Route] = []
    for module in _modules():
        declare = getattr(module, "routes", None)
        if declare is None:
            raise RuntimeError(f"{module.__name__} declares no routes(context)")
        found.extend(declare(context))
    return found
