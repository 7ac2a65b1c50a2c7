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

from db.database import Database
from service.auth import Authenticator
from service.config import Settings
from service.openapi import Route

# Path ids: SQL's 64-bit integers. Anything else matches no route (404),
# however many digits it has.
ID = "int(min=1, max=9223372036854775807)"


@dataclass(frozen=True)
class Context:
    """What resources are built from."""

    settings: Settings
    database: Database
    auth: Authenticator

    @property
    def max_body(self) -> int:
        """The largest request body accepted, in bytes."""
        return self.settings.max_body_bytes


def collect(context: Context) -> list[Route]:
    """Every resource module's routes, in module-name order."""
    found: list[Route] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        declare = getattr(module, "routes", None)
        if declare is None:
            raise RuntimeError(f"{module.__name__} declares no routes(context)")
        found.extend(declare(context))
    return found
