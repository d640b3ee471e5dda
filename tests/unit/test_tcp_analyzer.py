"""rawlab.analysis.tcp: tables of packets in -> events out.

Every scenario is also written to a pcap and run through tshark when it is
installed: rawlab must then agree with tshark on every frame and field
(tcp_tshark.compare), so the expectations below are tshark 4.0's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tcp_synth import SYN_OPTS, T0, Conv
from tcp_tshark import compare, have_tshark

from rawlab.analysis.tcp import (
    ConnectionClosed,
    ConnState,
    Handshake,
    Segment,
    TcpAnalyzer,
)
from rawlab.decode.dispatch import Decoder
from rawlab.records import LinkType

MS = 1_000_000


def flags_of(conv: Conv) -> dict[int, tuple[str, ...]]:
    return {s.frame: s.analysis for s in conv.segments() if s.analysis}


def agree_with_tshark(conv: Conv, tmp_path: Path) -> None:
    if not have_tshark():
        return
    res = compare(conv.write(tmp_path / "c.pcap"))
    assert not res.by_kind, res.summary()


def handshake_conv() -> Conv:
    conv = Conv().handshake(opts=SYN_OPTS)
    conv.c(3, "PA", seq=1, ack=1, n=100).s(4, "A", seq=1, ack=101)
    conv.c(5, "FA", seq=101, ack=1).s(6, "FA", seq=1, ack=102).c(7, "A", seq=102, ack=2)
    return conv


# ---- scenarios: (name, builder, {frame: analysis names}) -------------------------------------

def simultaneous_open() -> Conv:
    conv = Conv()
    conv.c(0, "S").s(0.5, "S")
    conv.c(1, "SA", ack=1).s(1.5, "SA", ack=1)
    return conv.c(3, "A", seq=1, ack=1)


def syn_retries() -> Conv:
    return Conv().c(0, "S").c(1000, "S").c(3000, "S").s(3001, "SA", ack=1).c(3002, "A", 1, 1)


def refused() -> Conv:
    return Conv().c(0, "S").s(0.1, "RA", ack=1)


def rto_retransmission() -> Conv:
    conv = Conv().handshake()
    conv.c(3, "PA", 1, 1, n=100).c(4, "PA", 101, 1, n=100)
    conv.c(300, "PA", 1, 1, n=100)  # RTO: no dup ACKs, long after
    return conv.s(301, "A", 1, 201)


def fast_retransmission() -> Conv:
    conv = Conv().handshake()
    for i in range(5):  # frames 4..8, the first one lost in the network
        conv.c(10 + i, "A", 1 + 100 * i, 1, n=100)
    for i in range(3):  # frames 9..11: ACK for the hole, then two dup ACKs
        conv.s(20 + i, "A", 1, 1)
    conv.c(23, "A", 1, 1, n=100)  # frame 12: the hole, within 20 ms of the dup ACKs
    return conv.s(24, "A", 1, 501)


def out_of_order() -> Conv:
    conv = Conv().handshake()
    conv.c(10, "A", 101, 1, n=100)  # frame 4 (a gap: previous segment not captured)
    conv.c(10.5, "A", 1, 1, n=100)  # frame 5: the earlier one, 0.5 ms later: out of order
    return conv.s(11, "A", 1, 201)


def lost_and_acked_unseen() -> Conv:
    conv = Conv().handshake()
    conv.c(10, "A", 1, 1, n=100)
    conv.c(11, "A", 201, 1, n=100)  # 101..200 never captured
    return conv.s(12, "A", 1, 301)  # ACKs what the capture never saw


def zero_window() -> Conv:
    conv = Conv().handshake()
    conv.c(10, "A", 1, 1, n=1000)
    conv.s(11, "A", 1, 1001, win=0)  # frame 5: zero window
    conv.c(200, "A", 1001, 1, n=1)  # frame 6: zero window probe (1 byte at nextseq)
    conv.s(201, "A", 1, 1001, win=0)  # frame 7: zero window probe ACK
    return conv.s(500, "A", 1, 1001, win=1000)  # frame 8: window update


def keep_alive() -> Conv:
    conv = Conv().handshake()
    conv.c(10, "PA", 1, 1, n=10).s(11, "A", 1, 11)
    conv.c(2000, "A", 10, 1)  # frame 6: seq = nextseq - 1, no data
    return conv.s(2001, "A", 1, 11)  # frame 7: its ACK


def window_full_and_update() -> Conv:
    conv = Conv().handshake(win=300)
    conv.c(10, "A", 1, 1, n=100).c(11, "A", 101, 1, n=100).c(12, "A", 201, 1, n=100)
    return conv.s(13, "A", 1, 301, win=0).s(50, "A", 1, 301, win=300)


def wraparound() -> Conv:
    conv = Conv(c_isn=0xFFFFFFFF - 150)
    conv.handshake()
    for i in range(4):  # crosses 2**32 in the second segment
        conv.c(10 + i, "A", 1 + 100 * i, 1, n=100)
    return conv.s(20, "A", 1, 401)


def midstream() -> Conv:
    conv = Conv()
    conv.c(0, "PA", 500, 700, n=100).s(1, "A", 700, 600).c(2, "PA", 600, 700, n=100)
    return conv


def half_close() -> Conv:
    conv = Conv().handshake()
    conv.c(3, "FA", 1, 1)  # client done sending
    conv.s(4, "PA", 1, 2, n=100).c(5, "A", 2, 101)  # the server still sends
    return conv.s(6, "FA", 101, 2).c(7, "A", 2, 102)


def port_reuse() -> Conv:
    conv = Conv().handshake()
    conv.c(3, "FA", 1, 1).s(4, "FA", 1, 2).c(5, "A", 2, 2)
    conv.c(10_000, "S", raw_seq=777_777)  # same ports, new ISN
    return conv


SCENARIOS: list[tuple[str, Any, dict[int, tuple[str, ...]]]] = [
    ("handshake", handshake_conv, {}),
    # each SYN-ACK repeats its side's ISN (already sent in its SYN): tshark calls it a
    # retransmission; the last ACK repeats the last ACK number: a duplicate ACK
    ("simultaneous_open", simultaneous_open, {
        3: ("retransmission",), 4: ("retransmission",), 5: ("duplicate_ack",)}),
    ("syn_retries", syn_retries, {2: ("retransmission",), 3: ("retransmission",)}),
    ("refused", refused, {}),
    ("rto_retransmission", rto_retransmission, {6: ("retransmission",)}),
    ("fast_retransmission", fast_retransmission, {  # frame 9 repeats the SYN-ACK's ACK
        9: ("duplicate_ack",), 10: ("duplicate_ack",), 11: ("duplicate_ack",),
        12: ("retransmission", "fast_retransmission")}),
    ("out_of_order", out_of_order, {4: ("lost_segment",), 5: ("out_of_order",)}),
    ("lost_and_acked_unseen", lost_and_acked_unseen,
     {5: ("lost_segment",), 6: ("ack_lost_segment",)}),
    ("zero_window", zero_window, {  # 1000 bytes fill the SYN-ACK's unscaled 1000
        4: ("window_full",), 5: ("zero_window",), 6: ("zero_window_probe",),
        7: ("zero_window", "zero_window_probe_ack"), 8: ("window_update",)}),
    ("keep_alive", keep_alive, {6: ("keep_alive",), 7: ("keep_alive_ack",)}),
    ("window_full_and_update", window_full_and_update, {
        6: ("window_full",), 7: ("zero_window",), 8: ("window_update",)}),
    ("wraparound", wraparound, {}),
    ("midstream", midstream, {}),
    ("half_close", half_close, {}),
    ("port_reuse", port_reuse, {7: ("reused_ports",)}),
]


@pytest.mark.parametrize(("name", "build", "want"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_analysis_flags(name: str, build: Any, want: dict[int, tuple[str, ...]],
                        tmp_path: Path) -> None:
    conv = build()
    assert flags_of(conv) == want
    agree_with_tshark(conv, tmp_path)


def test_handshake_event_options_and_scaled_window() -> None:
    ev = handshake_conv().run()
    hs = [e for e in ev if isinstance(e, Handshake)]
    assert hs == [Handshake(0, 2 * MS, (1, 2, 3))]
    segs = [e for e in ev if isinstance(e, Segment)]
    syn, synack, ack, data = segs[:4]
    assert (syn.seq_rel, syn.next_seq_rel, synack.ack_rel, ack.seq_rel, ack.ack_rel) == (
        0, 1, 1, 1, 1)
    assert syn.options["mss"] == 1460 and syn.options["wscale"] == 7
    assert syn.options["sack_perm"] and syn.options["ts"] == (1, 0)
    assert syn.window == 1000  # SYNs are never scaled
    assert ack.window == 1000 << 7 and ack.window_raw == 1000 and ack.window_scale == 7
    assert data.len == 100 and data.next_seq_rel == 101 and data.bytes_in_flight == 100
    assert segs[4].acked_frame == 4 and segs[4].ack_rtt_ns == 1 * MS
    assert all(s.checksum_status == "good" for s in segs)
    closed = [e for e in ev if isinstance(e, ConnectionClosed)]
    assert len(closed) == 1
    c = closed[0].connection
    assert (c.state, c.history, c.closed, c.completeness) == (ConnState.SF, "ShADaFf", "fin",
                                                              31)
    assert c.irtt_ns == 2 * MS
    assert c.client == (bytes((10, 0, 0, 1)), 40000) and c.server[1] == 80
    assert c.options[0].mss == 1460 and c.options[1].wscale == 7 and c.options[0].timestamps
    assert c.stats[0].segments == 5 and c.stats[0].bytes == 100 and c.stats[1].segments == 3
    assert c.stats[0].rtt_samples >= 1 and c.stats[0].rtt_min_ns == 1 * MS


def test_simultaneous_open_handshake() -> None:
    hs = [e for e in simultaneous_open().run() if isinstance(e, Handshake)]
    assert len(hs) == 1 and hs[0].frames == (1, 3, 4)


def test_refused_is_rej() -> None:
    ev = refused().run()
    (closed,) = [e for e in ev if isinstance(e, ConnectionClosed)]
    assert closed.connection.state == ConnState.REJ
    assert closed.connection.closed == "rst"
    assert closed.connection.completeness == 1 | 4 | 32  # tshark: a RST-ACK is an "ACK" too
    assert not [e for e in ev if isinstance(e, Handshake)]


def test_dup_ack_numbers_and_frames() -> None:
    segs = {s.frame: s for s in fast_retransmission().segments()}
    # the server's last ACK number changed with its SYN-ACK (frame 2)
    assert [(segs[f].dup_ack_num, segs[f].dup_ack_frame) for f in (9, 10, 11)] == [
        (1, 2), (2, 2), (3, 2)]
    assert segs[13].dup_ack_num is None
    assert segs[12].dir == 0 and segs[12].seq_rel == 1


def test_wraparound_relative_numbers() -> None:
    segs = wraparound().segments()
    data = [s for s in segs if s.len]
    assert [s.seq_rel for s in data] == [1, 101, 201, 301]
    assert data[2].seq < data[1].seq  # the raw number wrapped
    assert segs[-1].ack_rel == 401 and segs[-1].acked_frame == 7


def test_midstream() -> None:
    ev = midstream().run()
    segs = [e for e in ev if isinstance(e, Segment)]
    assert [s.dir for s in segs] == [0, 1, 0]
    assert segs[0].seq_rel == 1 and segs[0].ack_rel == 1  # tshark: 1 when the SYN is unseen
    assert segs[2].seq_rel == 101
    (closed,) = [e for e in ev if isinstance(e, ConnectionClosed)]
    assert closed.connection.state == ConnState.OTH and closed.connection.closed == "end"


def test_half_close_closes_after_both_fins() -> None:
    ev = half_close().run(finish=False)
    closed = [(i, e) for i, e in enumerate(ev) if isinstance(e, ConnectionClosed)]
    assert len(closed) == 1
    assert ev[closed[0][0] - 1].frame == 8  # emitted with the last ACK
    assert closed[0][1].connection.state == ConnState.SF


def test_port_reuse_starts_a_new_stream() -> None:
    ev = port_reuse().run()
    segs = [e for e in ev if isinstance(e, Segment)]
    assert segs[-1].stream == 1 and segs[-2].stream == 0
    assert segs[-1].seq_rel == 0 and segs[-1].seq == 777_777


def test_idle_eviction_and_limits() -> None:
    tcp = TcpAnalyzer(idle_timeout_ns=1000 * MS)
    conv = Conv().handshake()
    ev = conv.run(tcp, finish=False)
    assert tcp.live_connections == 1
    # 300 packets of another connection, 2 s later: the first is evicted as idle
    other = Conv(c_port=40001)
    for i in range(300):
        other.c(2000 + i, "A", 1 + i, 1, n=1)
    out: list[Any] = []
    for frame, (ts, data) in enumerate(other.packets, 10):
        out += tcp.feed_bytes(frame, ts, data, LinkType.RAW)
    closed = [e for e in out if isinstance(e, ConnectionClosed)]
    assert [c.stream for c in closed] == [0] and closed[0].reason == "idle"
    assert closed[0].connection.state == ConnState.S1
    assert tcp.live_connections == 1
    assert [e for e in ev if isinstance(e, Handshake)]
    tcp2 = TcpAnalyzer(max_connections=2)
    for port in range(3):
        Conv(c_port=50000 + port).c(0, "S").run(tcp2, finish=False)
    assert tcp2.live_connections == 2


def test_capture_drops_mark_the_gap() -> None:
    tcp = TcpAnalyzer()
    conv = lost_and_acked_unseen()
    out: list[Any] = []
    for frame, (ts, data) in enumerate(conv.packets, 1):
        if frame == 5:
            tcp.note_capture_drops(1)
        out += tcp.feed_bytes(frame, ts, data, LinkType.RAW)
    segs = {e.frame: e for e in out if isinstance(e, Segment)}
    assert segs[5].capture_loss and not segs[4].capture_loss
    assert not segs[6].capture_loss  # one drop explains one gap


def test_feed_with_decoded_packet_matches_feed_bytes() -> None:
    conv = fast_retransmission()
    dec = Decoder()
    tcp = TcpAnalyzer()
    slow = []
    for frame, (ts, data) in enumerate(conv.packets, 1):
        slow += [e for e in tcp.feed(frame, ts, dec.decode(data, LinkType.RAW))
                 if isinstance(e, Segment)]
    assert slow == conv.segments()


def test_non_tcp_and_truncated_input_is_ignored() -> None:
    tcp = TcpAnalyzer()
    assert tcp.feed_bytes(1, T0, b"\x45" + b"\x00" * 10, LinkType.RAW) == []
    assert tcp.feed_bytes(2, T0, b"", LinkType.ETHERNET) == []
    assert tcp.feed(3, T0, Decoder().decode(b"\x00" * 60, LinkType.ETHERNET)) == []


def test_the_compiled_flow_keeps_wiresharks_bounds() -> None:
    """rawlab._tcp_sequence: at most TCP_MAX_UNACKED_SEGMENTS unacked segments a
    direction (a SYN or FIN past the bound takes no extra sequence number, as
    Wireshark); an ACK acknowledges the first sent of the segments ending at it, found
    in a list kept by sequence number when segments arrive out of order, with its RTT;
    at most 3 SACK blocks are kept; fin_seq is None until set; bytes in flight."""
    from rawlab.analysis.tcp.expert import A_OUT_OF_ORDER, A_RETRANSMISSION
    from rawlab.analysis.tcp.sequence import TCP_MAX_UNACKED_SEGMENTS, Flow
    from rawlab.analysis.tcp.sequence import segment as step
    from rawlab.decode.checksum import Verdict

    def segment(fwd: Flow, rev: Flow, seq: int, ack: int, flags: int, win: int, seglen: int,
                frame: int, ts: int, first_rtt: int, taflags: int) -> tuple[Any, ...]:
        seg, taf, rtt = step(fwd, rev, frame, ts, 3, 0, b"\x0a\0\0\1", 1000, b"\x0a\0\0\2",
                             80, seq, ack, flags, seglen, win, Verdict.GOOD, {}, first_rtt,
                             taflags, Segment)
        assert (seg.frame, seg.ts_ns, seg.stream, seg.seq, seg.ack, seg.len) == (
            frame, ts, 3, seq, ack, seglen)
        assert seg.family == 4 and seg.analysis == () and seg.capture_loss is False
        assert seg.ack_rtt_ns == (rtt or None)
        return taf, seg.acked_frame, rtt, seg.bytes_in_flight

    a, b = Flow(), Flow()
    syn, ack_, psh = 0x02, 0x10, 0x18
    assert segment(a, b, 1000, 0, syn, 100, 0, 1, 0, 0, 0) == (0, None, None, None)
    assert (a.base, a.nextseq, a.pending) == (1000, 1001, 1)
    assert segment(b, a, 5000, 1001, syn | ack_, 100, 0, 2, 10, 0, 0) == (0, 1, 10, None)
    assert (b.base, a.pending, b.pending) == (5000, 0, 1)
    # data 1..100 (frame 3), 201..300 (4), then 101..200 (5: out of order, 1 ms later)
    assert segment(a, b, 1001, 5001, psh, 100, 100, 3, 20, 0, 0) == (0, 2, 10, 100)
    taf = segment(a, b, 1201, 5001, psh, 100, 100, 4, 30, 0, 0)[0]
    assert taf == 0x02  # A_LOST_PACKET: a gap
    taf, acked, rtt, bif = segment(a, b, 1101, 5001, psh, 100, 100, 5, 1_000_030, 0, 0)
    assert taf == A_OUT_OF_ORDER and (acked, rtt) == (None, None)
    assert a.pending == 3 and bif is None  # (none after a gap, until an ACK)
    # a retransmission of 101..200 (frame 6); the ACK of 1..200 acknowledges frame 5
    assert segment(a, b, 1101, 5001, psh, 100, 100, 6, 9_000_000, 0, 0)[0] == A_RETRANSMISSION
    assert segment(b, a, 5001, 1201, ack_, 100, 0, 7, 9_000_040, 0, 0)[1:3] == (5, 8_000_010)
    assert a.pending == 1  # 201..300 is left
    b.sack = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10))
    assert b.sack == ((1, 2), (3, 4), (5, 6))
    b.sack = ()
    assert b.fin_seq is None
    b.fin_seq = 2**32 + 7
    assert b.fin_seq == 7
    b.fin_seq = None
    assert b.fin_seq is None
    # the bound: a direction with room for no more; a FIN then takes no sequence number
    c, d = Flow(), Flow()
    segment(c, d, 0, 0, syn, 100, 0, 1, 0, 0, 0)
    for i in range(TCP_MAX_UNACKED_SEGMENTS + 5):
        segment(c, d, 1 + i, 0, psh, 100, 1, 2 + i, 0, 0, 0)
    assert c.pending == TCP_MAX_UNACKED_SEGMENTS
    nxt = 1 + TCP_MAX_UNACKED_SEGMENTS + 5
    assert c.nextseq == nxt
    segment(c, d, nxt, 0, 0x01, 100, 0, 99_999, 0, 0, 0)  # FIN
    assert c.nextseq == nxt and c.pending == TCP_MAX_UNACKED_SEGMENTS
    args = (0, 0, 0, 0, b"", 0, b"", 0, 0, 0, 0, 0, 0, "good", {}, 0, 0, Segment)
    with pytest.raises(TypeError, match="two Flows"):
        step(c, object(), *args)
    with pytest.raises(ValueError, match="two Flows"):
        step(c, c, *args)
    with pytest.raises(TypeError, match="20 arguments"):
        step(c, d, *args[:-1])
    with pytest.raises(TypeError, match="not a slot"):
        step(c, d, *args[:-1], Flow)
    assert segment(c, d, nxt + 1, 0, 0x10, 7, 0, 100_000, 5, 0, 0)  # (its fields: learnt)
    # a class showing Segment's slot descriptors without their room: refused, no write
    tiny = type("Tiny", (), {"__slots__": ()})
    for name in Segment.__slots__:
        setattr(tiny, name, getattr(Segment, name))
    with pytest.raises(TypeError, match="not a slot"):
        step(c, d, *args[:-1], tiny)
    with pytest.raises(ValueError, match="taflags"):
        step(c, d, *args[:-2], -1, Segment)
