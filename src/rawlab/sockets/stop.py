"""Signals and stopping, the one place: SIGINT, SIGTERM and SIGHUP mean the same.

A command either *runs until it is stopped* (a live capture, a monitor) or has
an end of its own (reading a file, the handshake demo, a dump). The console
entry (:mod:`rawlab.console`) picks the policy before anything else is imported,
so that no start-up window is left to a signal's default action (death without
cleanup):

* :func:`interrupt_on_signals` (commands with an end): the three signals raise
  KeyboardInterrupt, so every ``finally`` and context manager runs (namespaces,
  nftables tables, monitor links are removed); the CLI then exits 130.
* :func:`defer_stops` (commands that run until stopped): a signal is remembered;
  the reading loop, once it runs inside :func:`stop_on_signals`, stops at once,
  finishes its output and summary, and the command exits 0 — also when the signal
  came while it was still starting.

    with stop_on_signals(session.stop):
        for item in session.drain():   # ends soon after Ctrl-C, SIGTERM or SIGHUP
            ...

``stop`` runs in the signal handler, between two bytecodes of the main thread:
it should only set a flag (or wake a poll) that the reading loop checks. The
previous handlers come back when the block ends, whatever ends it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_requested: list[int] = []  # signals that came while no stop_on_signals block ran
_owner = [0]  # the process the policy is for


def _dies_if_forked(signum: int, owner: int) -> bool:
    """A child forked after `owner` set a handler (pyroute2's namespace helpers, a lab's
    servers) keeps the default action: it dies as its parent expects."""
    if os.getpid() == owner:
        return False
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return True


def _forked_child(signum: int) -> bool:
    return _dies_if_forked(signum, _owner[0])


@contextmanager
def _handled(signals: tuple[signal.Signals, ...],
             handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """`handler` for `signals` inside the block; the previous handlers after it."""
    old = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# Python code that os.fork runs in the parent (os.register_at_fork): an exception raised
# there is printed ("Exception ignored in ...", a traceback) and dropped, the stop lost
_AT_FORK = frozenset({("logging", "_acquireLock"), ("logging", "_releaseLock"),
                      ("logging", "_prepareFork"), ("logging", "_afterFork")})
AT_FORK_AGAIN = 0.01  # seconds after which a signal that came in such code comes again


def _raise(signum: int, frame: FrameType | None) -> None:
    if _forked_child(signum):
        return
    if frame is not None and (frame.f_globals.get("__name__"),
                              frame.f_code.co_name) in _AT_FORK:
        again = threading.Timer(AT_FORK_AGAIN, os.kill, (os.getpid(), signum))
        again.daemon = True
        again.start()
        return
    raise KeyboardInterrupt


def _remember(signum: int, frame: FrameType | None) -> None:
    if not _forked_child(signum):
        _requested.append(signum)


def interrupt_on_signals() -> None:
    """SIGINT, SIGTERM and SIGHUP all raise KeyboardInterrupt from now on (in this process;
    a forked child dies of them as by default)."""
    _owner[0] = os.getpid()
    for s in STOP_SIGNALS:
        signal.signal(s, _raise)


def defer_stops() -> None:
    """SIGINT, SIGTERM and SIGHUP are remembered until a :func:`stop_on_signals` block."""
    _owner[0] = os.getpid()
    for s in STOP_SIGNALS:
        signal.signal(s, _remember)


def requested() -> bool:
    """A stop was asked for before the reading began (see :func:`defer_stops`)."""
    return bool(_requested)


@contextmanager
def stop_on_signals(stop: Callable[[], object],
                    signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Call ``stop()`` on each of ``signals`` inside the block (at once if one already
    came while the command was starting)."""
    owner = os.getpid()

    def handler(signum: int, frame: FrameType | None) -> None:
        if not _dies_if_forked(signum, owner):
            stop()

    with _handled(signals, handler):
        if _requested:
            stop()
        yield


@contextmanager
def held(signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Inside the block `signals` wait: each is remembered and raised again when the
    block ends, so its handler runs then; for a few steps that must not be cut in two
    (a namespace made and not yet listed for removal, a table removed and not yet
    released). Handlers are the main thread's: elsewhere the block holds nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()
    got: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        if not _dies_if_forked(signum, owner):
            got.append(signum)

    try:
        with _handled(signals, remember):
            yield
    finally:  # (the handlers are back: each signal that came is handled now)
        for s in dict.fromkeys(got):
            signal.raise_signal(s)


@contextmanager
def raise_on_signals(exc: Callable[[int], BaseException],
                     signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP)
                     ) -> Iterator[None]:
    """Inside the block, each of ``signals`` raises ``exc(signum)`` (for a library that
    must undo kernel state it made even when no CLI installed a policy)."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise exc(signum)

    with _handled(signals, handler):
        yield
