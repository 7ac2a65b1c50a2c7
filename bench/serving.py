"""The command line both bench-only servers share: --db, --port, --threads."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import waitress


def _stop(signum: int, frame: object) -> None:
    # waitress' run() catches SystemExit and joins its worker threads.
    raise SystemExit(0)


def serve(
    prog: str, create_app: Callable[[Path], Any], argv: list[str] | None = None
) -> int:
    """Parse the options, build the app on --db, serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    app = create_app(args.db.resolve())
    signal.signal(signal.SIGTERM, _stop)
    waitress.serve(app, host=args.host, port=args.port, threads=args.threads)
    return 0
