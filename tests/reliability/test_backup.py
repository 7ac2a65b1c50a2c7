"""Online backup while writes go on, then a restore from it."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import run_cli, service_env
from tests.reliability.support import (
    SHIPPED,
    Client,
    db_rows,
    integrity,
    remove_sidecars,
    serving,
)

pytestmark = pytest.mark.slow


def keep_writing(url: str, stop: threading.Event, acked: dict[str, str]) -> None:
    """PUT new keys until stopped; record every acknowledged one."""
    client = Client(url)
    n = 0
    try:
        while not stop.is_set():
            key, value = f"b{n:06d}", f"value {n} " + "x" * 200
            status, _, _ = client.request(
                "PUT", f"/v1/metadata/{key}", {"value": value}
            )
            assert status == 201
            acked[key] = value
            n += 1
    finally:
        client.close()


@pytest.mark.timeout(120)
def test_backup_under_writes_is_consistent_and_restores(tmp_path: Path) -> None:
    """backup PATH during writes: exit 0, sound copy; restoring it serves its data."""
    db = tmp_path / "db.sqlite3"
    copy = tmp_path / "backups" / "copy.sqlite3"
    copy.parent.mkdir()
    env = service_env(db)
    acked: dict[str, str] = {}
    with serving(env) as server:
        stop = threading.Event()
        writer = threading.Thread(
            target=keep_writing, args=(server.url, stop, acked), daemon=True
        )
        writer.start()
        try:
            time.sleep(1.0)
            before = dict(acked)  # acknowledged before the backup began
            began = time.monotonic()
            result = run_cli("backup", str(copy), env=env, timeout=60)
            took = time.monotonic() - began
            time.sleep(0.3)
            during_and_after = len(acked)
        finally:
            stop.set()
            writer.join(timeout=10)
        assert not writer.is_alive()
        assert server.stop() == 0
    print(
        f"backup of {len(before)}+ rows in {took:.2f} s while writing; "
        f"{during_and_after - len(before)} writes acknowledged meanwhile: {result.stdout.strip()}"
    )
    assert result.returncode == 0, result.stderr
    assert f"schema version {SHIPPED}" in result.stdout
    assert "integrity ok" in result.stdout
    assert during_and_after > len(before), "the writer stopped during the backup"

    assert integrity(copy) == "ok"
    assert db_rows(copy, "SELECT max(version) FROM schema_migrations") == [(SHIPPED,)]
    saved = dict(db_rows(copy, "SELECT key, value FROM app_metadata"))
    # Everything acknowledged before the backup started is in it, and the
    # rest is a prefix of the writes: a consistent point in time.
    assert before.items() <= saved.items()
    assert saved.items() <= acked.items()
    assert sorted(saved) == sorted(acked)[: len(saved)]
    assert len(acked) > len(saved) > 0

    # Restore: stop (done above), replace the file, drop -wal/-shm, start.
    shutil.copy(copy, db)
    remove_sidecars(db)
    with serving(env) as server:
        client = Client(server.url)
        status, _, ready = client.json("GET", "/readyz")
        assert (status, ready["schema_version"]) == (200, SHIPPED)
        items: dict[str, str] = {}
        after = ""
        while True:
            status, _, page = client.json(
                "GET", f"/v1/metadata?limit=1000{'&after=' + after if after else ''}"
            )
            assert status == 200
            items.update((item["key"], item["value"]) for item in page["items"])
            if page["next"] is None:
                break
            after = page["next"]
        assert items == saved
        # The restored database takes writes.
        assert (
            client.request("PUT", "/v1/metadata/after-restore", {"value": "y"})[0]
            == 201
        )
        client.close()
        assert server.stop() == 0
