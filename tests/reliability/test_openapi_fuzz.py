"""Property-based: schemathesis drives every documented operation in-process.

schemathesis.pytest.from_fixture() fails under pytest 9.2 (it reads the
private Function._nodeid), so each operation found in the document runs
its own hypothesis test built from APIOperation.as_strategy() instead.
New routes are fuzzed without touching this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from db import open_database
from service.app import create_app
from service.config import Settings
from tests.messaging_helpers import ADMIN, ADMIN_TOKEN, bearer, make_user, post, start
from tests.reliability.support import env_seconds

pytestmark = pytest.mark.slow

# 100 per operation and mode in CI; RELIABILITY_FUZZ_EXAMPLES=1000 digs deeper.
EXAMPLES = int(env_seconds("RELIABILITY_FUZZ_EXAMPLES", 100))


IDENTITIES = ("anonymous", "admin", "user")
# Not run: schemathesis' "schema-valid data is accepted". The API answers
# 422 (RFC 9110: well-formed, semantically wrong) to requests no schema can
# rule out: members whose handles do not exist, a cursor it never issued.
# Every other check runs: no 5xx, documented statuses, content types and
# bodies, invalid data rejected, authentication not ignored.


@pytest.fixture
def api(
    tmp_path: Path,
) -> Iterator[tuple[schemathesis.BaseSchema, dict[str, dict[str, str]]]]:
    """The app's own OpenAPI document through WSGI, and a header set per identity.

    The app has an admin token, so the admin routes exist; a user with a
    token is a member of conversation 1, which has messages, so generated
    requests with the user's token reach the handlers behind the checks.
    """
    config = Settings(database_path=tmp_path / "db.sqlite3", admin_token=ADMIN_TOKEN)
    database = open_database(config.database_path)
    try:
        app = create_app(config, database=database)
        client = falcon.testing.TestClient(app)
        token = make_user(client, "fuzzer")
        make_user(client, "other")
        conversation = start(client, token, ["other"])
        for text in ("hello world", "<b>markup</b> & friends", "ünïcödé words"):
            post(client, token, conversation, text)
        headers = {"anonymous": {}, "admin": ADMIN, "user": bearer(token)}
        yield schemathesis.openapi.from_wsgi("/openapi.json", app), headers
    finally:
        database.close()


def takes_input(operation: schemathesis.APIOperation) -> bool:
    """Whether the operation has parameters or a body to get wrong."""
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
@pytest.mark.timeout(600)
def test_every_operation_never_fails_and_conforms_to_the_document(
    api: tuple[schemathesis.BaseSchema, dict[str, dict[str, str]]],
    mode: GenerationMode,
    identity: str,
) -> None:
    """Generated requests, with no token, the admin's, a user's: no 5xx, all as documented."""
    api_schema, identities = api
    headers = identities[identity]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {"GET /healthz", "PUT /v1/metadata/{key}"} <= {op.label for op in operations}
    failures: list[str] = []
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not takes_input(operation):
            continue  # nothing invalid to generate

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                headers=headers, excluded_checks=[positive_data_acceptance]
            )

        try:
            check()
        except Exception as ex:  # collect every operation's failure, then fail
            failures.append(f"{operation.label}: {ex}")
    print(
        f"{mode.value}/{identity}: {len(operations)} operations x {EXAMPLES} examples"
    )
    assert failures == [], "\n\n".join(failures)
