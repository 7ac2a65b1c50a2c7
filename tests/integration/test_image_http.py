"""The image serves the API over real HTTP, as uid 10001, on a read-only root."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.integration.harness import REPO, UID, Service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

LATEST_MIGRATION = max(
    int(p.name.split("_", 1)[0]) for p in (REPO / "schema_migrations").glob("*.sql")
)


def test_readyz_reports_the_packaged_schema_version(service: Service) -> None:
    """/readyz is 200 with the newest shipped migration's version and nothing pending."""
    answer = service.request("GET", "/readyz")

    assert answer.status == 200
    assert answer.body["status"] == "ready"
    assert answer.body["schema_version"] == LATEST_MIGRATION
    assert answer.body["pending"] == []
    assert answer.headers.get("x-request-id")


def test_metadata_round_trips(service: Service) -> None:
    """PUT creates then updates, GET and the list return it, DELETE removes it."""
    key = f"it-{uuid.uuid4().hex[:8]}"

    created = service.request("PUT", f"/v1/metadata/{key}", {"value": "one"})
    updated = service.request("PUT", f"/v1/metadata/{key}", {"value": "two"})
    fetched = service.request("GET", f"/v1/metadata/{key}")
    listed = service.request("GET", "/v1/metadata?limit=100")
    deleted = service.request("DELETE", f"/v1/metadata/{key}")
    gone = service.request("GET", f"/v1/metadata/{key}")

    assert (created.status, updated.status) == (201, 200)
    assert fetched.status == 200
    assert (fetched.body["key"], fetched.body["value"]) == (key, "two")
    assert fetched.body["updated_at"]
    assert listed.status == 200
    assert {"key": key, "value": "two"}.items() <= next(
        item for item in listed.body["items"] if item["key"] == key
    ).items()
    assert deleted.status == 204
    assert gone.status == 404
    assert gone.content_type == "application/problem+json"
    assert gone.body["status"] == 404


def test_process_runs_as_the_unprivileged_uid(service: Service) -> None:
    """PID 1 (the service) runs with real, effective and saved uid 10001, not root."""
    code, out = service.wrapped.exec_run(["cat", "/proc/1/status", "/proc/1/cmdline"])

    assert code == 0, out
    status = out.decode(errors="replace")
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == [str(UID)] * 4
    assert "-m\x00service\x00serve" in status


def test_read_only_root_filesystem_works(service: Service) -> None:
    """With --read-only the service writes its data; only /data and /tmp are writable."""
    service.wrapped.reload()
    probe = (
        "import errno, json\n"
        "result = {}\n"
        "for path in ('/opt/venv/probe', '/probe', '/tmp/probe', '/data/probe'):\n"
        "    try:\n"
        "        open(path, 'w').close()\n"
        "    except OSError as ex:\n"
        "        result[path] = errno.errorcode[ex.errno]\n"
        "    else:\n"
        "        result[path] = 'written'\n"
        "print(json.dumps(result))\n"
    )

    write = service.request("PUT", "/v1/metadata/read-only-probe", {"value": "x"})
    code, out = service.wrapped.exec_run(["/opt/venv/bin/python", "-c", probe])

    assert service.wrapped.attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert write.status in (200, 201)
    assert code == 0, out
    assert json.loads(out) == {
        "/opt/venv/probe": "EROFS",
        "/probe": "EROFS",
        "/tmp/probe": "written",
        "/data/probe": "written",
    }


def test_image_healthcheck_turns_healthy(service: Service) -> None:
    """The image's HEALTHCHECK (python + urllib against /readyz) reports healthy."""
    deadline = time.monotonic() + 45  # first check runs one interval (10 s) after start
    status = "none"
    while time.monotonic() < deadline:
        service.wrapped.reload()
        status = service.wrapped.attrs["State"]["Health"]["Status"]
        if status != "starting":
            break
        time.sleep(0.5)

    assert status == "healthy", service.wrapped.attrs["State"]["Health"]
