"""Faults of the machine under the database: a vanished file, a full disk, I/O errors."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import service_env
from tests.reliability.support import Client, problem_of, serving, with_rlimit

pytestmark = pytest.mark.slow


@pytest.mark.timeout(60)
def test_deleted_database_file_fails_readiness_and_writes(tmp_path: Path) -> None:
    """After rm of the file and its -wal/-shm, /readyz is 503 and a write 503, not 201."""
    db = tmp_path / "db.sqlite3"
    with serving(service_env(db)) as server:
        client = Client(server.url)
        assert client.request("PUT", "/v1/metadata/before", {"value": "v"})[0] == 201
        for name in (db.name, db.name + "-wal", db.name + "-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        status, headers, payload = client.request("GET", "/readyz")
        assert status == 503
        assert "deleted or replaced" in payload.decode()
        status, headers, payload = client.request(
            "PUT", "/v1/metadata/after", {"value": "v"}
        )
        problem = problem_of(status, headers, payload)
        assert status == 503
        assert int(headers["retry-after"]) >= 1
        assert "retry" in problem["detail"]
        assert client.request("GET", "/healthz")[0] == 200  # the process itself is fine
        client.close()
        assert server.stop() == 0


@pytest.mark.timeout(60)
def test_replaced_database_file_is_noticed(tmp_path: Path) -> None:
    """A file moved over the open one (a restore done while serving) is not the one in use."""
    db = tmp_path / "db.sqlite3"
    with serving(service_env(db)) as server:
        client = Client(server.url)
        assert client.request("GET", "/readyz")[0] == 200
        shutil.copy(db, tmp_path / "copy.sqlite3")
        os.replace(tmp_path / "copy.sqlite3", db)
        assert client.request("GET", "/readyz")[0] == 503
        assert client.request("PUT", "/v1/metadata/k", {"value": "v"})[0] == 503
        client.close()


@contextlib.contextmanager
def small_filesystem(tmp_path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of size mounted under tmp_path (needs root), unmounted after."""
    mount = tmp_path / f"fs-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        if os.environ.get("SERVICE_REQUIRE_DOCKER") == "1":  # CI runs as root
            pytest.fail(f"cannot mount a tmpfs: {done.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path, leave: int) -> Path:
    """Write a filler file until about leave bytes of the filesystem are free."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free
    with filler.open("wb") as out:
        out.write(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.timeout(120)
def test_full_disk_answers_507_keeps_reads_and_stops_cleanly(tmp_path: Path) -> None:
    """Out of space: writes are 507 problem+json with Retry-After, reads go on, SIGTERM exits 0."""
    with small_filesystem(tmp_path, "8m") as fs:
        db = fs / "db.sqlite3"
        with serving(service_env(db)) as server:
            client = Client(server.url)
            assert client.request("PUT", "/v1/metadata/kept", {"value": "v"})[0] == 201
            filler = fill(fs, leave=64 * 1024)
            statuses = []
            for i in range(200):
                status, headers, payload = client.request(
                    "PUT", f"/v1/metadata/k{i}", {"value": "x" * 60_000}
                )
                statuses.append(status)
                if status == 507:
                    problem = problem_of(status, headers, payload)
                    assert int(headers["retry-after"]) >= 1
                    assert "space" in problem["detail"]
                    break
                assert status == 201, payload[:300]
            assert statuses[-1] == 507, statuses
            acknowledged = [f"k{i}" for i, s in enumerate(statuses) if s == 201]
            assert client.request("GET", "/v1/metadata/kept")[0] == 200
            assert client.request("GET", "/readyz")[0] == 200
            client.close()
            assert server.stop() == 0
            logged = [line for line in server.lines if line.get("log.level") == "ERROR"]
            assert logged, "the failed write is logged"
            assert all("exc" not in line for line in logged)  # one line, no traceback
        filler.unlink()
        with serving(service_env(db)) as again:
            client = Client(again.url)
            for key in ["kept", *acknowledged]:
                assert client.request("GET", f"/v1/metadata/{key}")[0] == 200, key
            client.close()


# Past this size write(2) fails with EFBIG (Python ignores SIGXFSZ), which
# SQLite reports as SQLITE_IOERR_WRITE: a real I/O error.
FSIZE_LIMIT = 2 * 1024 * 1024


@pytest.mark.timeout(120)
def test_io_error_on_write_answers_503_keeps_reads_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    """A write the disk refuses with an I/O error (EFBIG past RLIMIT_FSIZE): 503
    problem+json with Retry-After and one log line; reads go on; SIGTERM exits 0;
    every acknowledged write is there after a restart."""
    db = tmp_path / "db.sqlite3"
    with serving(
        service_env(db),
        preexec_fn=with_rlimit(resource.RLIMIT_FSIZE, FSIZE_LIMIT, FSIZE_LIMIT),
    ) as server:
        client = Client(server.url)
        assert client.request("PUT", "/v1/metadata/kept", {"value": "v"})[0] == 201
        statuses = []
        for i in range(200):
            status, headers, payload = client.request(
                "PUT", f"/v1/metadata/k{i}", {"value": "x" * 60_000}
            )
            statuses.append(status)
            if status != 201:
                problem = problem_of(status, headers, payload)
                assert status == 503, problem
                assert int(headers["retry-after"]) >= 1
                break
        assert statuses[-1] == 503, statuses
        acknowledged = [f"k{i}" for i, s in enumerate(statuses) if s == 201]
        assert acknowledged, "some writes fit under the limit"
        assert client.request("GET", "/v1/metadata/kept")[0] == 200
        client.close()
        assert server.stop() == 0
        logged = [line for line in server.lines if line.get("log.level") == "ERROR"]
        assert any("disk I/O error" in str(line.get("message")) for line in logged), (
            logged
        )
        assert all("exc" not in line for line in logged)  # one line, no traceback
    with serving(service_env(db)) as again:
        client = Client(again.url)
        for key in ["kept", *acknowledged]:
            assert client.request("GET", f"/v1/metadata/{key}")[0] == 200, key
        client.close()
