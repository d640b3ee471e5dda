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


def _ours(pid: int) -> list[str]:
    return [n for n in list_namespaces() if f"-{pid}-" in n]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
@pytest.mark.parametrize("delay", [0.06, 0.3, 0.7])
def test_the_demo_removes_its_namespaces(sig: int, delay: float) -> None:
    p = subprocess.Popen([RAWLAB, "handshake"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
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
@pytest.mark.parametrize("delay", [0.06, 0.12, 0.25])
def test_capture_started_and_stopped_at_once_still_writes(tmp_path: Path, sig: int,
                                                           delay: float) -> None:
    """A stop in capture's first moments (before the ring even exists) still ends with
    tcpdump's summary, exit 0 and a valid (here: empty) pcapng. (Only the interpreter's
    own first ~20 ms, before rawlab's first line runs, are left to the default action.)"""
    out = tmp_path / "c.pcapng"
    p = subprocess.Popen([RAWLAB, "capture", "-i", "lo", "-w", str(out), "udp port 9"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
        time.sleep(0.6)
        p.send_signal(sig)
        _, err = p.communicate(timeout=30)
        assert p.returncode == 0, (argv, err)
        assert "Traceback" not in err and "interrupted" not in err
