"""The committed reference captures (captures/tcp-*.pcap): rawlab's analysis of each,
pinned, and — where tshark is installed — equal to tshark 4.0's on every frame."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from tcp_tshark import compare, have_tshark, rawlab_segments

from rawlab.analysis.tcp import ConnectionClosed, ConnState, TcpAnalyzer
from rawlab.pcap.reader import open_file

CAPTURES = Path(__file__).resolve().parents[2] / "captures"

# file: (TCP frames, analysis flag counts, Zeek conn_state)
EXPECTED: dict[str, tuple[int, dict[str, int], str]] = {
    "tcp-clean.pcap": (32, {}, ConnState.SF),
    "tcp-ipv6-loss.pcap": (265, {"duplicate_ack": 17, "fast_retransmission": 1,
                                 "out_of_order": 3, "retransmission": 3, "window_full": 4},
                           ConnState.SF),
    "tcp-keepalive.pcap": (12, {"keep_alive": 2, "keep_alive_ack": 2}, ConnState.SF),
    "tcp-loss.pcap": (421, {"duplicate_ack": 23, "fast_retransmission": 3, "out_of_order": 2,
                            "retransmission": 5, "window_full": 2, "window_update": 70,
                            "zero_window": 1}, ConnState.SF),
    "tcp-refused.pcap": (2, {}, ConnState.REJ),
    "tcp-reset.pcap": (8, {}, ConnState.RSTO),
    "tcp-zerowindow.pcap": (295, {"keep_alive": 2, "window_full": 103, "window_update": 10,
                                  "zero_window": 2}, ConnState.SF),
}


def test_every_capture_is_pinned() -> None:
    assert {p.name for p in CAPTURES.glob("tcp-*.pcap")} == set(EXPECTED)
    for p in CAPTURES.glob("tcp-*.pcap"):
        assert p.stat().st_size < 200_000


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_analysis_is_pinned(name: str) -> None:
    frames, flags, state = EXPECTED[name]
    segs, _ = rawlab_segments(CAPTURES / name)
    assert len(segs) == frames
    assert dict(Counter(n for s in segs.values() for n in s.analysis)) == flags
    tcp = TcpAnalyzer()
    closed = []
    with open_file(CAPTURES / name) as cap:
        for frame, rec in enumerate(cap, 1):
            closed += [e for e in tcp.feed_bytes(frame, rec.ts_ns, rec.data, rec.linktype)
                       if isinstance(e, ConnectionClosed)]
    closed += tcp.finish()
    assert [c.connection.state for c in closed] == [state]


@pytest.mark.skipif(not have_tshark(), reason="tshark not installed")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_agrees_with_tshark(name: str) -> None:
    res = compare(CAPTURES / name)
    assert not res.by_kind, res.summary()
