"""sockets.stop.held: a stop signal inside the block waits for its end (a namespace made
and not yet listed for removal must not be cut from its listing by Ctrl-C)."""

from __future__ import annotations

import os
import signal

import pytest

from rawlab.sockets.stop import held

pytestmark = pytest.mark.unit


class Stopped(Exception):
    pass


def test_a_signal_in_the_block_arrives_after_it() -> None:
    def stop(signum: int, frame: object) -> None:
        raise Stopped(signum)

    old = signal.signal(signal.SIGTERM, stop)
    steps = []
    try:
        with pytest.raises(Stopped) as info:
            with held():
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)  # twice: delivered once
                steps.append("made")
                steps.append("listed")
            steps.append("after")  # never: the signal's handler raised at the block's end
        assert info.value.args == (signal.SIGTERM,)
        assert steps == ["made", "listed"]
        assert signal.getsignal(signal.SIGTERM) is stop  # the handler is back
        with held():
            steps.append("quiet")  # no signal: nothing raised
        assert steps[-1] == "quiet"
    finally:
        signal.signal(signal.SIGTERM, old)


def test_a_stop_inside_fork_hooks_comes_again_after_them(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """os.fork runs logging's lock hooks in the parent, where a raised KeyboardInterrupt is
    printed as "Exception ignored" and lost (a stopped demo once ran on to exit 0 with a
    traceback): the commands-with-an-end handler sends the signal again a moment later."""
    import threading
    import time

    from rawlab.sockets import stop

    code = compile("def _releaseLock(handler, signum):\n"
                   "    handler(signum, sys._getframe())\n", "<logging>", "exec")
    fake_logging: dict[str, object] = {"__name__": "logging", "sys": __import__("sys")}
    exec(code, fake_logging)
    came = threading.Event()
    old = signal.signal(signal.SIGUSR1, lambda s, f: came.set())
    monkeypatch.setattr(stop, "_owner", [os.getpid()])
    try:
        fake_logging["_releaseLock"](stop._raise, signal.SIGUSR1)  # type: ignore[operator]
        assert not came.is_set()  # nothing raised in the hook, nothing yet
        end = time.monotonic() + 5
        while not came.is_set() and time.monotonic() < end:
            time.sleep(0.005)
        assert came.is_set()
        with pytest.raises(KeyboardInterrupt):  # anywhere else: at once
            stop._raise(signal.SIGUSR1, sys_frame())
    finally:
        signal.signal(signal.SIGUSR1, old)


def sys_frame() -> object:
    import sys

    return sys._getframe()
