"""The stop-signal handler: it may run inside any write, so it writes nothing."""

from __future__ import annotations

import logging
import signal

import pytest

from service.server import STOP_SIGNALS, StopSignals


def test_stop_signal_handler_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """SIGTERM while serving asks the server to stop and logs nothing from the handler."""
    asked: list[str] = []
    before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    try:
        signals = StopSignals()
        signals.install()
        signals.serving(asked.append)
        with caplog.at_level(logging.DEBUG):
            signal.raise_signal(signal.SIGTERM)
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
    assert asked == ["received SIGTERM"]
    assert caplog.records == []
