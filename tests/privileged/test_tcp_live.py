"""`rawlab tcp -i`: live analysis prints events as they happen and the table on exit."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from _background import started_capture
from rawlab.lab import traffic
from rawlab.lab.netns import Lab

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def _run(lab: Lab, *args: str) -> tuple[str, str, int]:
    a, b = lab.netns("a"), lab.netns("b")
    lab.veth(a, b, "10.55.0.1/24", "10.55.0.2/24", offloads=False)
    p = started_capture(a, [RAWLAB, "tcp", "-i", "veth0", "--netns", a.name, *args],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for port in (7001, 7002):
        ex = traffic.tcp_exchange(b, a, "10.55.0.2", port, b"x" * 3000, b"y" * 100)
        assert not ex.errors
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    return out, err, p.returncode


def test_live_events_then_table(lab: Lab) -> None:
    out, err, rc = _run(lab)
    assert rc == 0, err
    lines = out.splitlines()
    assert sum("handshake complete (frames" in x for x in lines) == 2
    ended = [x for x in lines if " ended (" in x]
    assert len(ended) == 2 and all("SF" in x for x in ended)
    table = lines[lines.index("") + 1:]
    assert table[0].split()[:4] == ["stream", "client", "server", "state"]
    assert len(table) == 3  # header + one row per connection, no duplicates
    assert "10.55.0.2:7001" in table[1] and "10.55.0.2:7002" in table[2]
    assert "packets captured" in err and "0 packets dropped by kernel" in err


def test_live_json(lab: Lab) -> None:
    out, err, rc = _run(lab, "--json")
    assert rc == 0, err
    recs = [json.loads(x) for x in out.splitlines()]
    segs = [r for r in recs if r["type"] == "segment"]
    conns = [r for r in recs if r["type"] == "connection"]
    assert len(conns) == 2
    assert [s["flags"] for s in segs[:3]] == ["S", "SA", "A"]
    assert segs[0]["seq_rel"] == 0 and segs[1]["ack_rel"] == 1
