"""A command run in the background for a test, its output in a file."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import tempfile
import time


class Background:
    """Started once it prints ``ready`` on stderr (or after ``settle`` seconds, for peers that
    print nothing); :meth:`stop` sends SIGTERM and returns its output lines."""

    def __init__(self, cmd: list[str], ready: str | None = None, settle: float = 1.0) -> None:
        # stdout to a file: a pipe nobody reads until the end would fill and stall it
        self.out = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in stop()
        # a Python command that hangs dumps every thread's stack on SIGABRT (see stop)
        env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
        self.p = subprocess.Popen(cmd, stdout=self.out, stderr=subprocess.PIPE, text=True,
                                  env=env)
        if ready is None:
            time.sleep(settle)
            return
        assert self.p.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.p.stderr], [], [], 1)
            if r:
                line = self.p.stderr.readline()
                if ready in line:
                    return
                if not line:
                    break
        self.p.kill()
        raise AssertionError(f"{cmd[:4]} did not start: {self.p.communicate()}")

    def stop(self, settle: float = 1.0) -> list[str]:
        time.sleep(settle)
        self.p.send_signal(signal.SIGTERM)
        try:
            _, self.err = self.p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.send_signal(signal.SIGABRT)  # faulthandler: where each thread is
            _, err = self.p.communicate(timeout=30)
            raise AssertionError(f"{self.p.args[:4]} did not stop within 60 s of SIGTERM; "
                                 f"its threads then:\n{err[-6000:]}") from None
        self.out.seek(0)
        lines = self.out.read().splitlines()
        self.out.close()
        return lines


def _packet_rows(ns: object) -> list[list[str]]:
    """/proc/net/packet of ``ns``: sk RefCnt Type Proto Iface R Rmem User Inode."""
    out = ns.run(["cat", "/proc/net/packet"]).stdout  # type: ignore[attr-defined]
    return [line.split() for line in out.splitlines()[1:] if line.strip()]


def _bound(ns: object) -> set[str]:
    """Inodes of the packet sockets of ``ns`` that receive (R 1: bound with a protocol; rawlab
    opens its socket with protocol 0 and binds with ETH_P_ALL last, after ring and filter)."""
    return {r[8] for r in _packet_rows(ns) if len(r) >= 9 and r[5] == "1"}


def started_capture(ns: object, argv: list[str], **popen: object) -> subprocess.Popen[str]:
    """``argv`` (a capture in ``ns``) started, returned once a new packet socket of ``ns``
    receives, and a moment more: no guess of how long start-up takes on a loaded machine."""
    before = _bound(ns)
    p = subprocess.Popen(argv, text=True, **popen)  # type: ignore[call-overload]
    end = time.monotonic() + 30
    while not _bound(ns) - before:
        assert p.poll() is None and time.monotonic() < end, "capture did not start"
        time.sleep(0.05)
    time.sleep(0.1)
    return p
