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
