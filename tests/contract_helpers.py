"""For the tests that check the API with third-party tools: a served app, npm, chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.database import Database
from db.target import DatabaseTarget
from service.app import create_app
from service.server import Server
from tests.engines import settings_for
from tests.helpers import REPO
from tests.messaging_helpers import ADMIN_TOKEN

TOOLS = REPO / "tests" / "tools"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def missing(what: str) -> None:
    """Skip for want of a tool, unless SERVICE_REQUIRE_TOOLS=1 (CI): then fail."""
    if os.environ.get("SERVICE_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{what} (SERVICE_REQUIRE_TOOLS=1)")
    pytest.skip(what)


def npm_bin() -> Path:
    """tests/tools/node_modules/.bin, installed from package-lock.json when stale."""
    npm = shutil.which("npm")
    if npm is None:
        missing("npm not found (Debian: apt-get install nodejs npm)")
    installed = TOOLS / "node_modules" / ".package-lock.json"
    lock = TOOLS / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(
            [str(npm), "ci", "--no-fund", "--no-audit"],
            cwd=TOOLS,
            check=True,
            timeout=900,
            capture_output=True,
        )
    return TOOLS / "node_modules" / ".bin"


def tool_env() -> dict[str, str]:
    """The environment for the npm tools: no telemetry, no update checks."""
    return {
        **os.environ,
        "REDOCLY_TELEMETRY": "off",
        "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
        "NO_UPDATE_NOTIFIER": "1",
    }


def chromium() -> str:
    """Debian's chromium, or skip (fail in CI)."""
    found = shutil.which("chromium")
    if found is None:
        missing("chromium not found (apt-get install chromium)")
    return str(found)


@contextlib.contextmanager
def serving(database: Database, target: DatabaseTarget) -> Iterator[str]:
    """The app (with an admin token) behind a real waitress server; yields its URL."""
    app = create_app(settings_for(target, admin_token=ADMIN_TOKEN), database=database)
    server = Server(app, host="127.0.0.1", port=0, threads=4, shutdown_timeout=5)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.stop()
        thread.join(timeout=10)
