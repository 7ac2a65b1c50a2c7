"""text/event-stream frames (WHATWG HTML, "Server-sent events").

Every frame ends with a blank line. An event's data is one line of JSON
(JSON text escapes its newlines), so a frame never needs more than one
`data:` line. A frame with only an `id:` line sets the client's last
event id without dispatching anything: a new stream starts with one, so
a client that reconnects before its first event resumes from where it
started.
"""

from __future__ import annotations

import orjson

from db.domain.records import EventRecord

HEARTBEAT = b": keep-alive\n\n"
# HTTP/1.1 chunked encoding's last chunk: the stream ended cleanly.
LAST_CHUNK = b"0\r\n\r\n"
RESET = "reset"


def event(record: EventRecord) -> bytes:
    """An event: its id, its type and its data."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        record.id,
        record.kind.encode(),
        record.data.encode(),
    )


def position(event_id: int) -> bytes:
    """Only an id: where the client resumes from if it reconnects now."""
    return b"id: %d\n\n" % event_id


def reset(event_id: int, reason: str, last_event_id: str | None) -> bytes:
    """A reset: the client's id is past the retention window or unknown.

    The client refetches what it shows (the REST routes); the stream goes
    on from event_id.
    """
    data = orjson.dumps({"reason": reason, "last_event_id": last_event_id})
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, RESET.encode(), data)


def retry(milliseconds: int) -> bytes:
    """How long the client waits before it reconnects."""
    return b"retry: %d\n\n" % milliseconds


def chunk(frame: bytes) -> bytes:
    """A frame as one HTTP/1.1 chunk."""
    return b"%X\r\n%s\r\n" % (len(frame), frame)
