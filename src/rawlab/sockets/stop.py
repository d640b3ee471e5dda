"""Signals -> stop: within a block, SIGINT and SIGTERM ask a reader to end cleanly.

    with stop_on_signals(session.stop):
        for item in session.drain():   # ends soon after Ctrl-C or SIGTERM
            ...

``stop`` runs in the signal handler, between two bytecodes of the main thread:
it should only set a flag (or wake a poll) that the reading loop checks. The
previous handlers come back when the block ends, whatever ends it.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals(stop: Callable[[], object],
                    signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Call ``stop()`` on each of ``signals`` (default SIGINT, SIGTERM) inside the block."""
    old = {s: signal.signal(s, lambda _signum, _frame: stop()) for s in signals}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
