"""Handing a connection over after its response head: how a stream leaves waitress.

A streamed response (GET /v1/events) would hold a waitress worker thread
for as long as it is open. Instead the responder puts a Handoff in the
WSGI environ under HANDOFF; the server (service.waitress_adapter) then
builds the response head, takes the connection out of waitress' event
loop once the worker is done with it, and gives the socket and the head
to handoff.adopt(). The server marks requests it can do that for with
DETACHABLE; under any other server the responder answers otherwise.
"""

from __future__ import annotations

import socket
from typing import Protocol

DETACHABLE = "service.detachable"
HANDOFF = "service.handoff"


class Handoff(Protocol):
    """Who takes the connection once the response head is built."""

    def adopt(self, sock: socket.socket, head: bytes, chunked: bool) -> None:
        """Take the socket (non-blocking) and send head first; chunked: HTTP/1.1 chunks.

        Called from the server's event loop thread: return quickly.
        """

    def cancel(self) -> None:
        """The response did not go out as a stream (an error after the responder)."""
