"""Every signal a user sends is handled (issue 13, issue 14): SIGINT, SIGTERM and SIGHUP.

* Commands that run until stopped (capture, tcp -i, netlink monitor) stop cleanly and
  exit 0 with their summary and a valid file — also when the signal comes while they
  are still starting.
* Commands with an end of their own (the handshake demo) are interrupted: exit 130, one
  line, and everything they made in the kernel is removed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rawlab.lab.netns import list_namespaces
from rawlab.pcap.reader import open_file

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def _policy_set(pid: int, timeout: float = 10.0) -> None:
    """Wait until rawlab's first lines ran (its handler for SIGHUP, which Python itself
    never installs, is in place): the interpreter's own start-up before that is the one
    window no program can cover."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/status") as f:
                caught = next(int(ln.split()[1], 16) for ln in f if ln.startswith("SigCgt:"))
        except (OSError, StopIteration):
            return
        if caught & (1 << (signal.SIGHUP - 1)):
            return
        time.sleep(0.002)


def _ours(pid: int) -> list[str]:
    return [n for n in list_namespaces() if f"-{pid}-" in n]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
@pytest.mark.parametrize("delay", [0.0, 0.3, 0.7])
def test_the_demo_removes_its_namespaces(sig: int, delay: float) -> None:
    p = subprocess.Popen([RAWLAB, "handshake"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    _policy_set(p.pid)
    time.sleep(delay)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    if p.returncode == 0:  # the demo had already finished: nothing to interrupt
        assert _ours(p.pid) == []
        return
    assert p.returncode == 130, err
    assert err.strip().splitlines()[-1] == "rawlab: interrupted", err
    assert "Traceback" not in err
    assert _ours(p.pid) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.25])
def test_capture_started_and_stopped_at_once_still_writes(tmp_path: Path, sig: int,
                                                           delay: float) -> None:
    """A stop in capture's first moments (before the ring even exists) still ends with
    tcpdump's summary, exit 0 and a valid (here: empty) pcapng — from the moment rawlab's
    first line runs (the interpreter's own start-up before it is out of any program's
    reach)."""
    out = tmp_path / "c.pcapng"
    p = subprocess.Popen([RAWLAB, "capture", "-i", "lo", "-w", str(out), "udp port 9"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _policy_set(p.pid)
    time.sleep(delay)
    p.send_signal(sig)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert "packets captured" in err and "dropped by kernel" in err
    with open_file(out) as cap:
        assert list(cap) == []
    tshark = subprocess.run(["tshark", "-r", str(out)], capture_output=True, text=True,
                            check=False)
    assert tshark.returncode == 0, tshark.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_monitor_and_live_tcp_stop_cleanly(sig: int) -> None:
    for argv in (["netlink", "monitor", "--json"], ["tcp", "-i", "lo"]):
        p = subprocess.Popen([RAWLAB, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        _policy_set(p.pid)  # (the interpreter's own start-up is no program's to cover)
        time.sleep(0.6)
        p.send_signal(sig)
        _, err = p.communicate(timeout=30)
        assert p.returncode == 0, (argv, err)
        assert "Traceback" not in err and "interrupted" not in err
