"""A client generated from /openapi.json (openapi-python-client) runs docs/api.md's session."""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import falcon.testing
import pytest

from db.database import Database
from db.target import DatabaseTarget
from service.app import create_app
from tests.contract_helpers import serving
from tests.engines import settings_for
from tests.messaging_helpers import ADMIN_TOKEN

pytestmark = [pytest.mark.slow, pytest.mark.engines("sqlite")]
PACKAGE = "sf_client"


def generator() -> str:
    """openapi-python-client beside this interpreter (.venv), else on PATH (nix develop)."""
    beside = Path(sys.executable).parent / "openapi-python-client"
    found = str(beside) if beside.exists() else shutil.which("openapi-python-client")
    assert found, "openapi-python-client is not installed (the `test` extra has it)"
    return found


@pytest.fixture
def generated(
    target: DatabaseTarget, database: Database, tmp_path: Path
) -> Iterator[tuple[ModuleType, dict[str, Any]]]:
    """The generated client package, imported; and the document it came from."""
    app = create_app(settings_for(target, admin_token=ADMIN_TOKEN), database=database)
    document = falcon.testing.TestClient(app).simulate_get("/openapi.json").json
    (tmp_path / "openapi.json").write_text(json.dumps(document))
    (tmp_path / "config.json").write_text(json.dumps({"post_hooks": []}))
    done = subprocess.run(
        [
            generator(),
            "generate",
            "--path",
            str(tmp_path / "openapi.json"),
            "--config",
            str(tmp_path / "config.json"),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Warning" not in output, output  # nothing skipped, no model left out
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE), document
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def snake(name: str) -> str:
    """ConversationOut -> conversation_out, as the generator names modules."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def test_every_model_and_operation_is_generated(
    generated: tuple[ModuleType, dict[str, Any]],
) -> None:
    """One model class per component schema, one module per operationId."""
    client, document = generated
    models = importlib.import_module(f"{PACKAGE}.models")
    for name in document["components"]["schemas"]:
        assert hasattr(models, name), name
    for ops in document["paths"].values():
        for op in ops.values():
            tag = op["tags"][0]
            importlib.import_module(f"{PACKAGE}.api.{tag}.{op['operationId']}")
    assert client.__name__ == PACKAGE


def api(operation: str) -> Any:
    """The generated module of an operation, by operationId."""
    for tag in ("admin", "conversations", "health", "messages", "metadata", "users"):
        try:
            return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation}")
        except ModuleNotFoundError:
            continue
    raise AssertionError(operation)


def test_the_api_md_session_through_the_generated_client(
    generated: tuple[ModuleType, dict[str, Any]],
    target: DatabaseTarget,
    database: Database,
) -> None:
    """docs/api.md's curl session, step by step, every answer parsed into its model."""
    client_package, _ = generated
    m = importlib.import_module(f"{PACKAGE}.models")
    with serving(database, target) as url, contextlib.ExitStack() as clients:

        def connect(token: str | None = None) -> Any:
            if token is None:
                return clients.enter_context(client_package.Client(base_url=url))
            made = client_package.AuthenticatedClient(base_url=url, token=token)
            return clients.enter_context(made)

        anyone = connect()
        admin = connect(ADMIN_TOKEN)

        ready = api("ready_get").sync_detailed(client=anyone)
        assert ready.status_code == 200
        assert ready.parsed.status.value == "ready"

        put = api("metadata_put_item")
        created = put.sync_detailed("app.name", client=admin, body=m.MetadataIn("demo"))
        assert created.status_code == 201
        assert created.headers["location"] == "/v1/metadata/app.name"
        assert created.parsed.value == "demo"
        assert created.parsed.updated_at.tzinfo is not None
        replaced = put.sync_detailed("app.name", client=admin, body=m.MetadataIn("x"))
        assert replaced.status_code == 200
        page = api("metadata_get").sync(client=admin, limit=10)
        assert [e.key for e in page.items] == ["app.name"]
        assert page.next_ is None
        wrong = put.sync_detailed("app.name", client=admin, body=m.MetadataIn(5))
        assert wrong.status_code == 422
        assert wrong.parsed.errors[0].pointer == "#/value"
        one = api("metadata_get_item").sync_detailed("app.name", client=admin)
        same = api("metadata_get_item").sync_detailed(
            "app.name", client=admin, if_none_match=one.headers["etag"]
        )
        assert same.status_code == 304
        gone = api("metadata_delete_item").sync_detailed("app.name", client=admin)
        assert gone.status_code == 204

        for handle in ("ann", "bob"):
            user = api("users_post").sync(
                client=admin, body=m.UserIn(handle, handle.title())
            )
            assert isinstance(user, m.UserOut)
        token = api("users_post_tokens").sync("ann", client=admin)
        assert isinstance(token, m.TokenOut)
        ann = connect(token.token)
        talk = api("conversations_post").sync(
            client=ann, body=m.ConversationIn("Plans", members=["bob"])
        )
        assert isinstance(talk, m.ConversationOut)
        assert [x.handle for x in talk.members] == ["ann", "bob"]
        said = api("messages_post").sync(
            talk.id, client=ann, body=m.MessageIn("Lunch on Friday?")
        )
        assert isinstance(said, m.MessageOut)
        newest = api("messages_get").sync(talk.id, client=ann, limit=50)
        assert [x.body for x in newest.items] == ["Lunch on Friday?"]
        oldest = api("messages_get").sync(talk.id, client=ann, after=0, limit=50)
        assert [x.id for x in oldest.items] == [said.id]
        found = api("search_get").sync(client=ann, q="lunch")
        assert found.items[0].snippet == "<mark>Lunch</mark> on Friday?"
        listed = api("conversations_get").sync(client=ann)
        assert [c.title for c in listed.items] == ["Plans"]
        me = api("me_get").sync(client=ann)
        assert me.handle == "ann"

        revoked = api("tokens_delete").sync_detailed(token.id, client=admin)
        assert revoked.status_code == 204
        refused = api("me_get").sync_detailed(client=ann)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert isinstance(refused.parsed, m.ProblemOut)
