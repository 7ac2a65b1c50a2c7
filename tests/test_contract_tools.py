"""The document through the tools clients use: Redocly, Spectral, Redoc in Chromium.

The npm tools are pinned by tests/tools/package-lock.json (npm ci, run by
.ci/run and, when stale, here); chromium is Debian's. Without them these
tests skip, except under SERVICE_REQUIRE_TOOLS=1 (CI), where they fail.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from db.database import Database
from db.target import DatabaseTarget
from service.app import create_app
from tests.contract_helpers import (
    CHROMIUM_FLAGS,
    TOOLS,
    chromium,
    npm_bin,
    serving,
    tool_env,
)
from tests.engines import settings_for
from tests.helpers import REPO
from tests.messaging_helpers import ADMIN_TOKEN

pytestmark = [pytest.mark.slow, pytest.mark.tools, pytest.mark.engines("sqlite")]


@pytest.fixture
def document_file(
    target: DatabaseTarget, database: Database, tmp_path: Path
) -> tuple[Path, dict[str, Any]]:
    """The served /openapi.json, written to a file; and the document."""
    app = create_app(settings_for(target, admin_token=ADMIN_TOKEN), database=database)
    document = falcon.testing.TestClient(app).simulate_get("/openapi.json").json
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(document))
    return path, document


def test_redocly_recommended_ruleset_finds_no_error(
    document_file: tuple[Path, dict[str, Any]],
) -> None:
    """`redocly lint` with its recommended rules: 0 errors."""
    path, _ = document_file
    done = subprocess.run(
        [
            str(npm_bin() / "redocly"),
            "lint",
            "--extends=recommended",
            "--format=json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=tool_env(),
        check=False,
    )
    report = json.loads(done.stdout)
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    assert errors == [], json.dumps(errors, indent=1)[:4000]
    assert report["totals"]["errors"] == 0
    assert done.returncode == 0, done.stderr[-2000:]


def test_spectral_oas_ruleset_finds_no_error(
    document_file: tuple[Path, dict[str, Any]],
) -> None:
    """`spectral lint` with the oas ruleset: 0 errors (and no warnings either)."""
    path, _ = document_file
    done = subprocess.run(
        [
            str(npm_bin() / "spectral"),
            "lint",
            "--ruleset",
            str(TOOLS / ".spectral.yaml"),
            "--format",
            "json",
            "--quiet",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=tool_env(),
        check=False,
    )
    results = json.loads(done.stdout or "[]")
    errors = [r for r in results if r["severity"] == 0]
    assert errors == [], json.dumps(errors, indent=1)[:4000]
    assert results == [], [f"{r['code']}: {r['path']}" for r in results]
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_vendored_redoc_is_the_pinned_release() -> None:
    """service/static/redoc holds the pinned npm release's bundle and licence, unchanged."""
    package = npm_bin().parent / "redoc"
    pinned = json.loads((TOOLS / "package.json").read_text())["devDependencies"][
        "redoc"
    ]
    assert json.loads((package / "package.json").read_text())["version"] == pinned
    vendored = REPO / "service" / "static" / "redoc"
    for ours, theirs in [
        ("redoc.standalone.js", "bundles/redoc.standalone.js"),
        ("redoc.standalone.js.LICENSE.txt", "bundles/redoc.standalone.js.LICENSE.txt"),
        ("LICENSE", "LICENSE"),
    ]:
        assert (vendored / ours).read_bytes() == (package / theirs).read_bytes(), ours


def test_the_api_page_renders_every_operation_in_a_browser(
    target: DatabaseTarget, database: Database, tmp_path: Path
) -> None:
    """GET /docs in headless Chromium: Redoc shows each operation, loads nothing remote."""
    browser = chromium()
    with serving(database, target) as url:
        document = (
            falcon.testing.TestClient(
                create_app(settings_for(target), database=database)
            )
            .simulate_get("/openapi.json")
            .json
        )
        done = subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={tmp_path / 'profile'}",
                "--virtual-time-budget=20000",
                "--dump-dom",
                f"{url}/docs",
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    dom = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    summaries = [
        op["summary"] for ops in document["paths"].values() for op in ops.values()
    ]
    absent = [s for s in summaries if s not in dom]
    assert absent == [], dom[:2000]
    assert "/v1/conversations/{conversation_id}/messages" in dom
    # What the page loads (scripts, images, stylesheets): only from this server.
    loaded = re.findall(r'\ssrc="([^"]+)"', dom)
    loaded += re.findall(r'<link[^>]*\shref="([^"]+)"', dom)
    assert "/docs/redoc.standalone.js" in loaded
    remote = [
        u for u in loaded if re.match(r"(https?:)?//", u) and not u.startswith(url)
    ]
    assert remote == []
