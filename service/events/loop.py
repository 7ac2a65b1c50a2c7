"""The stream thread's passes: follow the events table, fan out, serve backlogs.

Everything here runs on the hub's one thread: the position in the events
table (cursor), the fan-out of each new event to the live streams of its
recipients, each resuming stream's backlog, heartbeats and the retention
window. Request threads only put new streams on the incoming queue and
ring the wake-up pipe (service/events/hub.py).

A new stream starts at the cursor; one resuming from an id is served its
backlog, page by page as its socket drains, up to the cursor, then
follows it. The cursor only moves forward past settled events, so a
stream that started at it misses nothing committed after that.
"""

from __future__ import annotations

import logging
import random
import selectors
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from db.domain.events import TOKEN_REVOKED
from db.domain.records import EventRecord
from db.engines.base.events import ChangeWatch
from service.events import sse
from service.events.following import PAGE, Following
from service.events.holding import Holding
from service.events.streams import Stream
from service.metrics import Metrics

log = logging.getLogger("service.events")

WATCH = "watch"
# A gap on PostgreSQL is checked again this soon; with LISTEN, the table is
# still read this often in case a notification was lost.
GAP_RECHECK = 0.005
LISTEN_BACKSTOP = 1.0
PRUNE_EVERY = 60.0
ERROR_BACKOFF = 1.0
# The reconnection delay every stream is told when it opens.
OPEN_RETRY_MS = 3000
# Resuming streams served per pass, so that live delivery never waits long.
CATCH_UP_PER_PASS = 16


@dataclass(frozen=True)
class Limits:
    """The settings the loop works to."""

    heartbeat: float
    buffer_bytes: int
    poll_interval: float


class StreamLoop:
    """Follows the events table for the streams it holds."""

    def __init__(
        self,
        following: Following,
        watch: Callable[[], ChangeWatch],
        limits: Limits,
        holding: Holding,
    ) -> None:
        self._following = following
        self._make_watch = watch
        self._limits = limits
        self.holding = holding
        holding.on_close = self._forget
        self.incoming: deque[tuple[Stream, bytes]] = deque()
        self._watch: ChangeWatch | None = None
        self._starting: list[Stream] = []
        self._behind: dict[Stream, None] = {}  # insertion-ordered: served in turn
        self.cursor: int | None = None
        self.poked = False
        self._gap = False
        now = time.monotonic()
        self._next_read = now
        self._next_heartbeat = now + limits.heartbeat
        self._next_prune = now + random.uniform(0, PRUNE_EVERY)  # noqa: S311 - spread only
        self._quiet_until = 0.0
        self._metrics: Metrics | None = holding.metrics

    # Watching the table.

    def _ensure_watch(self) -> None:
        if self._watch is not None:
            return
        try:
            self._watch = self._make_watch()
        except Exception as ex:  # an unreachable LISTEN URL: poll meanwhile
            _complain("cannot watch for events; polling", ex)
            return
        fd = self._watch.fileno()
        if fd is not None:
            self.holding.selector.register(fd, selectors.EVENT_READ, WATCH)

    def drop_watch(self) -> None:
        """Close the watch (its connection)."""
        if self._watch is None:
            return
        fd = self._watch.fileno()
        if fd is not None:
            self.holding.selector.unregister(fd)
        self._watch.close()
        self._watch = None

    def _listening(self) -> bool:
        return self._watch is not None and self._watch.fileno() is not None

    def _news(self) -> bool:
        """Whether the table may hold news (a poll, or a notification)."""
        self._ensure_watch()
        if self._watch is None:
            return True
        try:
            return self._watch.changed() or self._listening()
        except Exception as ex:
            _complain("lost the event watch; reconnecting", ex)
            self.drop_watch()
            return True

    def notified(self) -> None:
        """The watch's descriptor is readable: read the table now."""
        self._next_read = 0.0

    def _backlog_ready(self) -> bool:
        if self.cursor is None:
            return False
        room = self._limits.buffer_bytes // 4
        return any(
            s.backlog_bytes <= room and (s.position or 0) < self.cursor
            for s in self._behind
        )

    def timeout(self) -> float:
        """How long the selector may wait before the next pass has work."""
        if self.incoming or self.poked or self._backlog_ready():
            return 0.0
        now = time.monotonic()
        due = min(self._next_read, self._next_heartbeat, self._next_prune)
        if self._gap or self.cursor is None:
            due = min(due, now + GAP_RECHECK)
        return max(0.0, due - now)

    # One pass.

    def run_pass(self) -> None:
        """Adopt new streams, read and fan out, serve backlogs, heartbeats, prune."""
        now = time.monotonic()
        while self.incoming:
            stream, head = self.incoming.popleft()
            if self.holding.add(stream, head) and self.holding.send(
                stream, sse.retry(OPEN_RETRY_MS)
            ):
                self._starting.append(stream)
        if now >= self._quiet_until:
            try:
                self._follow(now)
            except Exception as ex:
                _complain("reading events failed; retrying", ex)
                self._quiet_until = now + ERROR_BACKOFF
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self._limits.heartbeat
            self.holding.heartbeats(now, self._limits.heartbeat)

    def _follow(self, now: float) -> None:
        news = self.poked
        if now >= self._next_read:
            listening = self._listening()
            self._next_read = now + (
                LISTEN_BACKSTOP if listening else self._limits.poll_interval
            )
            news = self._news() or news
        if news or self._gap or self.cursor is None:
            self.poked = False
            self._advance()
        if self._starting and self.cursor is not None:
            self._start()
        if self._behind:
            self._catch_up()
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            self._following.prune()

    def _advance(self) -> None:
        if self.cursor is None:
            self.cursor = self._following.start()
            self._gap = self.cursor is None
            if self.cursor is None:
                return
        while True:
            events, recipients, self._gap = self._following.read(self.cursor)
            if not events:
                return
            self._fan_out(events, recipients)
            self.cursor = events[-1].id
            if self._gap:
                return

    def _fan_out(
        self, events: list[EventRecord], recipients: dict[int, list[int]]
    ) -> None:
        holding = self.holding
        for event in events:
            if event.kind == TOKEN_REVOKED:
                token_id = orjson.loads(event.data)["token_id"]
                for stream in list(holding.by_token.get(token_id, ())):
                    holding.close(stream, "revoked", clean=True)
                continue
            frame = b""
            sent = 0
            for user_id in recipients.get(event.id, ()):
                for stream in list(holding.by_user.get(user_id, ())):
                    if stream.live:
                        frame = frame or sse.event(event)
                        if holding.send(stream, frame):
                            stream.sent += 1
                            sent += 1
            if sent and self._metrics is not None:
                self._metrics.events_sent.inc(sent)
                lag = time.time() - event.created_at.timestamp()
                self._metrics.event_lag.observe(max(0.0, lag))

    # Streams starting, resuming.

    def _start(self) -> None:
        starting, self._starting = self._starting, []
        starting = [s for s in starting if s in self.holding]
        valid = self._following.valid_tokens({s.token_id for s in starting})
        for stream in starting:
            if stream.token_id not in valid:
                self.holding.close(stream, "revoked", clean=True)
            elif stream.last_event_id is None:
                self._go_live(stream, sse.position(self._cursor()))
            else:
                resume = self._following.resume(stream.last_event_id)
                if resume.after is None:
                    self._reset(stream, resume.reset or "unknown")
                else:
                    stream.position = resume.after
                    self._behind[stream] = None

    def _cursor(self) -> int:
        assert self.cursor is not None  # noqa: S101 - streams start once it is known
        return self.cursor

    def _go_live(self, stream: Stream, frame: bytes = b"") -> None:
        self._behind.pop(stream, None)
        stream.position = None
        stream.live = True
        if frame:
            self.holding.send(stream, frame)

    def _reset(self, stream: Stream, reason: str) -> None:
        self._go_live(stream, sse.reset(self._cursor(), reason, stream.last_event_id))

    def _catch_up(self) -> None:
        cursor = self._cursor()
        room = self._limits.buffer_bytes // 4
        for stream in list(self._behind)[:CATCH_UP_PER_PASS]:
            position = stream.position
            if position is None or stream.backlog_bytes > room:
                continue  # let the client read first
            if position >= cursor:
                if position == cursor:
                    self._go_live(stream)
                continue  # resumed from a newer id than this process has: wait
            page, complete = self._following.backlog(stream.user_id, position, cursor)
            if not complete:
                self._reset(stream, "expired")
                continue
            sent = 0
            for event in page:
                if not self.holding.send(stream, sse.event(event)):
                    break
                sent += 1
            stream.sent += sent
            if sent and self._metrics is not None:
                self._metrics.events_sent.inc(sent)  # a backlog's events count too
            if stream not in self.holding:
                continue
            if len(page) < PAGE:  # everything up to the cursor is sent
                self._go_live(stream)
            else:
                stream.position = page[-1].id
                del self._behind[stream]  # to the back of the queue: in turn
                self._behind[stream] = None

    def _forget(self, stream: Stream) -> None:
        self._behind.pop(stream, None)


def _complain(what: str, ex: BaseException) -> None:
    log.warning("%s: %s", what, ex, extra={"event.action": "events_failed"})
