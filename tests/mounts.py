"""Run a command in a private mount namespace (real tmpfs, read-only mounts, hosts files)."""

from __future__ import annotations

import functools
import shlex
import shutil
import subprocess
from collections.abc import Sequence


@functools.cache
def private_mounts_available() -> bool:
    """True when `unshare -m` can mount here (root, or CAP_SYS_ADMIN)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
        check=False,
        timeout=30,
    )
    return probe.returncode == 0


def in_private_mounts(setup: Sequence[str], argv: Sequence[str]) -> list[str]:
    """argv run after the shell commands in setup, in a mount namespace of its own.

    Mounts made by setup are seen by argv only and vanish with it; nothing
    outside the test changes.
    """
    script = " && ".join([*setup, "exec " + shlex.join(argv)])
    return ["unshare", "-m", "sh", "-c", script]
