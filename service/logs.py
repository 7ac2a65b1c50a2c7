"""Logging: one JSON object per line in ECS field names, access lines included.

Every line, access lines too, is a `logging` record, so a handler added to
the root logger (OpenTelemetry's LoggingHandler, Sentry's integration, a
file) sees each one with its fields as record attributes. The line's
field names are the Elastic Common Schema's (docs/operations.md, "Logs"):
@timestamp, log.level, message, ecs.version, log.logger, process.pid (which
process wrote it) and, in a worker process, worker.id (its number, from 1),
error.*; an access record carries
http.request.method, url.path, http.route, http.response.status_code,
event.duration (ns) and http.request.id.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any, TextIO

ECS_VERSION = "8.11.0"
ACCESS_LOGGER = "service.access"
# Attributes every LogRecord has; anything else was passed as extra=.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_ACCESS_FIELDS = (
    "http.request.method",
    "url.path",
    "http.route",
    "http.response.status_code",
    "event.duration",
    "http.request.id",
)
# What an access record holds when no filter added anything to it.
_ACCESS_SIZE = len(logging.makeLogRecord(dict.fromkeys(_ACCESS_FIELDS)).__dict__)
_quote = json.encoder.encode_basestring  # C-accelerated
_access = logging.getLogger(ACCESS_LOGGER)


def log_access(
    method: str,
    path: str,
    route: str | None,
    status: int,
    seconds: float,
    request_id: str,
) -> None:
    """Send one access record through `logging` (nothing when INFO is off).

    Logger.makeRecord and Logger.handle, not Logger.info: the caller's
    frame (findCaller walks the stack) would always be this function.
    """
    if not _access.isEnabledFor(logging.INFO):
        return
    record = _access.makeRecord(
        ACCESS_LOGGER,
        logging.INFO,
        __file__,
        0,
        "%s %s %d",
        (method, path, status),
        None,
        "log_access",
    )
    # The fields as record attributes, set directly: makeRecord's extra= would
    # check each name against the record's own, which these never clash with.
    record.__dict__.update(
        {
            "http.request.method": method,
            "url.path": path,
            "http.route": route,
            "http.response.status_code": status,
            "event.duration": int(seconds * 1e9),
            "http.request.id": request_id,
        }
    )
    _access.handle(record)


_second: tuple[int, str] = (-1, "")
# In a worker process (SERVICE_WORKERS above 1): its number, on every line.
_worker: int | None = None
_worker_field = ""


def set_worker(number: int) -> None:
    """Mark every line this process writes from now on with worker.id number."""
    global _worker, _worker_field
    _worker, _worker_field = number, f'"worker.id": {int(number)}, '


def _timestamp(created: float) -> str:
    """ISO 8601 UTC with milliseconds; strftime once per second, not per line."""
    global _second  # a one-entry cache: a race between threads only recomputes it
    second = int(created)
    cached = _second
    if cached[0] != second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        cached = _second = (second, text)
    return f"{cached[1]}.{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line with ECS field names."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as compact JSON."""
        if record.name == ACCESS_LOGGER and len(record.__dict__) == _ACCESS_SIZE:
            return self._access_line(record)
        entry: dict[str, Any] = {
            "@timestamp": _timestamp(record.created),
            "log.level": record.levelname,
            "message": record.getMessage(),
            "ecs.version": ECS_VERSION,
            "log.logger": record.name,
            "process.pid": record.process,
        }
        if _worker is not None:
            entry["worker.id"] = _worker
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            kind, error, _ = record.exc_info
            entry["error.type"] = kind.__qualname__
            entry["error.message"] = str(error)
            entry["error.stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)

    def _access_line(self, record: logging.LogRecord) -> str:
        """The same shape, by hand: json.dumps of a dict costs several times more."""
        fields = record.__dict__
        # Each string quoted once (C code); the message reuses the quoted parts.
        method = _quote(str(fields["http.request.method"]))
        path = _quote(str(fields["url.path"]))
        route = fields["http.route"]
        route = "null" if route is None else _quote(str(route))
        status = int(fields["http.response.status_code"])
        return (
            f'{{"@timestamp": "{_timestamp(record.created)}", "log.level": "INFO", '
            f'"message": {method[:-1]} {path[1:-1]} {status}", '
            f'"ecs.version": "{ECS_VERSION}", "log.logger": "{ACCESS_LOGGER}", '
            f'"process.pid": {record.process}, {_worker_field}'
            f'"http.request.method": {method}, "url.path": {path}, '
            f'"http.route": {route}, "http.response.status_code": {status}, '
            f'"event.duration": {int(fields["event.duration"])}, '
            f'"http.request.id": {_quote(str(fields["http.request.id"]))}}}'
        )


class JsonLinesHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes access records in batches.

    A write(2) per request, and the GIL hand-off around it, costs more than
    the rest of a small request. Access records are kept and written
    together by a background thread at most FLUSH_INTERVAL after the first
    of them, or at once when MAX_PENDING wait. Any other record writes the
    pending ones first, so the stream keeps the order things happened in.
    Exit writes the rest (logging.shutdown flushes every handler); a
    SIGKILL loses at most the last FLUSH_INTERVAL of access lines.
    """

    FLUSH_INTERVAL = 0.1
    MAX_PENDING = 512

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._pending: list[logging.LogRecord] = []
        self._pending_lock = threading.Lock()
        self._has_lines = threading.Event()
        self._flusher: threading.Thread | None = None
        self._closed = False

    def handle(self, record: logging.LogRecord) -> bool:
        """Queue an access record (no I/O lock); write any other one now."""
        if record.name != ACCESS_LOGGER:
            return bool(super().handle(record))
        checked = self.filter(record)
        if not checked:
            return False
        if isinstance(checked, logging.LogRecord):  # Python 3.12+: a filter's copy
            record = checked
        with self._pending_lock:
            self._pending.append(record)
            waiting = len(self._pending)
        if waiting == 1:
            if self._flusher is None:
                self._start_flusher()
            self._has_lines.set()
        elif waiting >= self.MAX_PENDING:
            self.flush()
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Write the pending access lines, then record."""
        self._write_pending()
        super().emit(record)

    def flush(self) -> None:
        """Write every pending access line now."""
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()
            super().flush()

    def _write_pending(self) -> None:
        with self._pending_lock:
            records, self._pending = self._pending, []
            self._has_lines.clear()
        if not records:
            return
        chunks = _whole_lines([self.format(r) + self.terminator for r in records])
        with self.lock:  # type: ignore[union-attr]
            try:
                for chunk in chunks:
                    self.stream.write(chunk)
                    self.stream.flush()
            except (OSError, ValueError):
                pass  # closed or broken stream: what logging's handlers do too

    def close(self) -> None:
        """Write what is pending and let the background thread end."""
        self._closed = True
        self.flush()
        self._has_lines.set()
        super().close()

    def _start_flusher(self) -> None:
        with self._pending_lock:
            if self._flusher is not None:
                return
            self._flusher = threading.Thread(
                target=self._flush_forever, name="access-log", daemon=True
            )
        self._flusher.start()

    def _flush_forever(self) -> None:
        while not self._closed:
            self._has_lines.wait()
            time.sleep(self.FLUSH_INTERVAL)
            self.flush()


# Worker processes share one stderr: a write(2) of at most PIPE_BUF bytes to
# a pipe is never interleaved with another's, so batches are written in
# chunks of whole lines no longer than that (a longer line goes alone).
PIPE_BUF = 4096


def _whole_lines(lines: list[str]) -> list[str]:
    """lines joined into chunks of whole lines of at most PIPE_BUF bytes."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        length = len(line) if line.isascii() else len(line.encode())
        if current and size + length > PIPE_BUF:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(line)
        size += length
    if current:
        chunks.append("".join(current))
    return chunks


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record to stream (stderr) as JSON lines.

    Replaces only a handler an earlier call installed: one a user (or
    OpenTelemetry's auto-instrumentation) added to the root logger stays.
    """
    handler = JsonLinesHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, JsonLinesHandler):
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(level)
    # waitress warns at WARNING; keep those, drop its INFO chatter.
    logging.getLogger("waitress").setLevel(max(logging.WARNING, root.level))
    # ...except "Task queue depth is N", one line per queued request under
    # load: saturation is visible in the latency histogram instead.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
