"""Logging: one JSON object per line, with the request id when there is one."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any, TextIO

# Attributes every LogRecord has; anything else was passed as extra=.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
ACCESS_LOGGER = "service.access"
_quote = json.encoder.encode_basestring  # C-accelerated


def _timestamp(created: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        + f".{int(created % 1 * 1000):03d}Z"
    )


class JsonFormatter(logging.Formatter):
    """Render a record as a single JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as compact JSON."""
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class AccessLog:
    """Access lines in the same JSON shape, without a LogRecord per request.

    The logging module costs about as much per line as the rest of a small
    request; this writes the line itself, to the same stream under the same
    lock, and still obeys the service.access logger's level.
    """

    def __init__(self) -> None:
        self._logger = logging.getLogger(ACCESS_LOGGER)
        self._stream: TextIO = sys.stderr
        self._lock: threading.RLock | None = None
        self._second = -1
        self._second_text = ""

    def attach(self, handler: logging.StreamHandler[TextIO]) -> None:
        """Write where handler writes, under its lock."""
        self._stream = handler.stream
        self._lock = handler.lock

    def enabled(self) -> bool:
        """True when INFO lines of the access logger are wanted."""
        return self._logger.isEnabledFor(logging.INFO)

    def write(
        self, method: str, path: str, status: int, ms: float, request_id: str
    ) -> None:
        """Write one access line."""
        now = time.time()
        second = int(now)
        if second != self._second:  # strftime once per second, not per line
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        # The request id matches [A-Za-z0-9._:-] or is hex; the rest is quoted.
        quoted_path = _quote(path)
        quoted_method = _quote(method)
        line = (
            f'{{"ts": "{self._second_text}.{int(now % 1 * 1000):03d}Z", "level": "INFO", '
            f'"logger": "{ACCESS_LOGGER}", "msg": {_quote(f"{method} {path} {status}")}, '
            f'"request_id": "{request_id}", "method": {quoted_method}, "path": {quoted_path}, '
            f'"status": {status}, "duration_ms": {ms}}}'
        )
        if self._lock is None:
            self._stream.write(line + "\n")
            return
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


access = AccessLog()


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record to stream (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    access.attach(handler)
    # waitress warns at WARNING; keep those, drop its INFO chatter.
    logging.getLogger("waitress").setLevel(max(logging.WARNING, root.level))
    # ...except "Task queue depth is N", one line per queued request under
    # load: saturation is visible in the latency histogram instead.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
