"""present.fmt.write_all: every byte reaches an unbuffered stream (a raw FileIO, as
``sys.stdout.buffer`` is under PYTHONUNBUFFERED) whose write a signal cuts short."""

from __future__ import annotations

import io
import os
import signal
import threading
import time

import pytest

from rawlab.present.fmt import write_all

pytestmark = pytest.mark.unit


def test_a_write_a_signal_cuts_short_is_finished() -> None:
    r, w = os.pipe()
    raw = io.FileIO(w, "w")
    data = bytes(range(256)) * 400  # 102,400 bytes: more than a pipe holds (64 KiB)
    got: list[bytes] = []
    old = signal.signal(signal.SIGALRM, lambda *_: None)  # a handler that does not raise
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)  # interrupts the write blocked on the pipe

        def read_later() -> None:
            time.sleep(0.5)
            got.append(b"".join(iter(lambda: os.read(r, 65536), b"")))

        t = threading.Thread(target=read_later)
        t.start()
        write_all(raw, data)
        raw.close()
        t.join(10)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        os.close(r)
    assert got and got[0] == data
