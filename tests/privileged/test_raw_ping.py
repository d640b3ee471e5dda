"""`rawlab raw ping`: echo over a raw socket between two lab namespaces, IPv4 and IPv6;
our checksums are the ones on the wire (an AF_PACKET capture on the peer says so)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _pairs import pair

from rawlab.decode.dispatch import Decoder
from rawlab.raw.ping import Pinger, Reply, Sent
from rawlab.sockets.packet import RingConfig, open_ring

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


@pytest.mark.parametrize("target", ["10.0.0.2", "fd00::2"])
def test_ping_checksums_and_rtts(lab: Any, target: str) -> None:
    a, b = pair(lab)
    v6 = ":" in target
    ring = open_ring("veth1", netns=b.name, bpf="icmp6" if v6 else "icmp",
                        config=RingConfig(ring_mb=2))
    with ring:
        p = Pinger(target, count=3, size=40, interval=0.05, timeout=1.0, netns=a.name)
        events = list(p.run())
        wire = list(ring.records(idle=0.3, duration=2.0))
    sent = [e for e in events if isinstance(e, Sent)]
    replies = [e for e in events if isinstance(e, Reply)]
    assert [r.seq for r in replies] == [1, 2, 3]
    for r in replies:
        assert r.rtt_ns > 0 and r.src == target and r.size == 48
        assert r.checksum.verdict.value == "good"
        assert r.hop_limit == 64
    s = p.summary()
    assert (s.transmitted, s.received, s.loss_pct) == (3, 3, 0.0)
    assert 0 < s.rtt_min_ns <= s.rtt_avg_ns <= s.rtt_max_ns
    # the echo requests on the peer's wire carry exactly the checksums rawlab computed
    dec = Decoder()
    on_wire = {}
    for rec in wire:
        ic = dec.decode(rec.data, rec.linktype).layer("icmpv6" if v6 else "icmp")
        if ic is not None and ic.type == (128 if v6 else 8) and ic.id == p.ident:
            on_wire[ic.seq] = ic.checksum
    assert on_wire == {e.seq: e.checksum for e in sent}
    # both ends of each round trip are the kernel's timestamps (issue 14: a user-space
    # clock before sendto added the interpreter's time to every RTT)
    assert p.kernel_timed == 3
    by_seq = {e.seq: e for e in sent}
    assert [r.rtt_ns for r in replies] == [r.received.ts_ns - by_seq[r.seq].ts_ns
                                           for r in replies]
    # the request left the client's stack before it was captured on the peer's veth
    first_wire = min(rec.ts_ns for rec in wire)
    assert by_seq[1].ts_ns <= first_wire


def test_ping_cli_json_and_no_reply_exit(lab: Any) -> None:
    a, _b = pair(lab)
    res = subprocess.run([RAWLAB, "raw", "ping", "10.0.0.2", "-c", "2", "-i", "0.05", "--json",
                          "--netns", a.name], capture_output=True, text=True, timeout=20,
                         check=False)
    assert res.returncode == 0, res.stderr
    recs = [json.loads(ln) for ln in res.stdout.splitlines()]
    assert [r["type"] for r in recs].count("reply") == 2
    assert all(r["checksum_status"] == "good" for r in recs if r["type"] == "reply")
    assert recs[-1]["schema"] == "rawlab.raw.ping/1" and recs[-1]["received"] == 2
    # a permanent neighbour with nobody behind it: nothing comes back, exit 1
    a.run(["ip", "neigh", "replace", "10.0.0.9", "lladdr", "02:00:00:00:00:09", "dev", "veth0",
           "nud", "permanent"])
    res = subprocess.run([RAWLAB, "raw", "ping", "10.0.0.9", "-c", "1", "-W", "0.3",
                          "--netns", a.name], capture_output=True, text=True, timeout=20,
                         check=False)
    assert res.returncode == 1
    assert "1 packets transmitted, 0 received, 100% packet loss" in res.stdout
