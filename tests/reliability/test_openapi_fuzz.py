"""Property-based: schemathesis drives every documented operation in-process.

schemathesis.pytest.from_fixture() fails under pytest 9.2 (it reads the
private Function._nodeid), so each operation found in the document runs
its own hypothesis test built from APIOperation.as_strategy() instead.
New routes are fuzzed without touching this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from db import open_database
from service.app import create_app
from service.config import Settings
from tests.reliability.support import env_seconds

pytestmark = pytest.mark.slow

# 100 per operation and mode in CI; RELIABILITY_FUZZ_EXAMPLES=1000 digs deeper.
EXAMPLES = int(env_seconds("RELIABILITY_FUZZ_EXAMPLES", 100))


@pytest.fixture
def api_schema(tmp_path: Path) -> Iterator[schemathesis.BaseSchema]:
    """The app's own OpenAPI document, loaded through WSGI, on a fresh database."""
    config = Settings(database_path=tmp_path / "db.sqlite3")
    database = open_database(config.database_path)
    try:
        app = create_app(config, database=database)
        yield schemathesis.openapi.from_wsgi("/openapi.json", app)
    finally:
        database.close()


def takes_input(operation: schemathesis.APIOperation) -> bool:
    """Whether the operation has parameters or a body to get wrong."""
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
@pytest.mark.timeout(300)
def test_every_operation_never_fails_and_conforms_to_the_document(
    api_schema: schemathesis.BaseSchema, mode: GenerationMode
) -> None:
    """Generated requests: no 5xx; status, content type and body as documented."""
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
            case.call_and_validate()

        try:
            check()
        except Exception as ex:  # collect every operation's failure, then fail
            failures.append(f"{operation.label}: {ex}")
    print(f"{mode.value}: {len(operations)} operations x {EXAMPLES} examples")
    assert failures == [], "\n\n".join(failures)
