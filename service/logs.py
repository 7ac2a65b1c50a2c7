"""Logging: one JSON object per line, with the request id when there is one."""

from __future__ import annotations

import atexit
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
_PLAIN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# when, method, path, status, seconds, request id
_Entry = tuple[float, str, str, int, float, str]


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
    """Access lines in the same JSON shape, batched, without a LogRecord each.

    Writing a line per request costs a write(2) per request, and the GIL
    hand-off around it: more than the rest of a small request. Lines are
    kept in memory and written together, by a background thread at most
    FLUSH_INTERVAL after the first of them, or at once when MAX_PENDING
    lines wait. Any other log record flushes them first (the handler calls
    flush()), so the stream keeps the order things happened in. On exit
    (atexit, and `serve` after its drain) the rest is written; a SIGKILL
    loses at most the last FLUSH_INTERVAL of access lines.
    """

    FLUSH_INTERVAL = 0.1
    MAX_PENDING = 512

    def __init__(self) -> None:
        self._logger = logging.getLogger(ACCESS_LOGGER)
        self._stream: TextIO = sys.stderr
        self._stream_lock: threading.RLock | None = None
        self._pending: list[_Entry] = []
        self._pending_lock = threading.Lock()
        self._has_lines = threading.Event()
        self._flusher: threading.Thread | None = None
        self._second = -1
        self._second_text = ""

    def attach(self, handler: logging.StreamHandler[TextIO]) -> None:
        """Write where handler writes, under its lock (lines so far go first)."""
        self.flush()
        self._stream = handler.stream
        self._stream_lock = handler.lock

    def enabled(self) -> bool:
        """True when INFO lines of the access logger are wanted."""
        return self._logger.isEnabledFor(logging.INFO)

    def write(
        self, method: str, path: str, status: int, seconds: float, request_id: str
    ) -> None:
        """Queue one access line; it is formatted when the batch is written."""
        entry = (time.time(), method, path, status, seconds, request_id)
        with self._pending_lock:
            self._pending.append(entry)
            waiting = len(self._pending)
        if waiting == 1:
            if self._flusher is None:
                self._start_flusher()
            self._has_lines.set()
        elif waiting >= self.MAX_PENDING:
            self.flush()

    def _format(self, entry: _Entry) -> str:
        now, method, path, status, seconds, request_id = entry
        second = int(now)
        if second != self._second:  # strftime once per second, not per line
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        # Quoted once, reused inside msg; the request id matches
        # [A-Za-z0-9._:-] or is hex, and most methods need no quoting.
        path_json = _quote(path)[1:-1]
        if method not in _PLAIN_METHODS:
            method = _quote(method)[1:-1]
        return (
            f'{{"ts": "{self._second_text}.{int(now % 1 * 1000):03d}Z", "level": "INFO", '
            f'"logger": "{ACCESS_LOGGER}", "msg": "{method} {path_json} {status}", '
            f'"request_id": "{request_id}", "method": "{method}", "path": "{path_json}", '
            f'"status": {status}, "duration_ms": {seconds * 1000:.3f}}}\n'
        )

    def _start_flusher(self) -> None:
        with self._pending_lock:
            if self._flusher is not None:
                return
            self._flusher = threading.Thread(
                target=self._flush_forever, name="access-log", daemon=True
            )
        self._flusher.start()

    def _flush_forever(self) -> None:
        while True:
            self._has_lines.wait()
            time.sleep(self.FLUSH_INTERVAL)
            self.flush()

    def flush(self) -> None:
        """Write every queued line now."""
        with self._pending_lock:
            entries, self._pending = self._pending, []
            self._has_lines.clear()
        if not entries:
            return
        text = "".join([self._format(entry) for entry in entries])
        if self._stream_lock is None:
            self._write(text)
            return
        with self._stream_lock:
            self._write(text)

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # closed or broken stream: what logging's handlers do too


class JsonLinesHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes queued access lines before its record."""

    def emit(self, record: logging.LogRecord) -> None:
        """Flush the access lines, then write record."""
        access.flush()
        super().emit(record)


access = AccessLog()
atexit.register(access.flush)


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record to stream (stderr) as JSON lines."""
    handler = JsonLinesHandler(stream or sys.stderr)
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
