"""TCP stream reassembly (rawlab.analysis.streams) on synthetic segments: a message
shown on the frame that completes it, with the frames it came in; out of order,
retransmitted and overlapping segments; pipelined messages; bounds; the TLS session
state (handshake messages across records); and random segment streams never raise."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rawlab.analysis.streams import Cutter, TcpStreams
from rawlab.decode.dispatch import Decoder
from rawlab.decode.http import Http

pytestmark = pytest.mark.unit
DEC = Decoder()
CLIENT, SERVER = ("10.0.0.1", 40000), ("10.0.0.2", 80)


def seg(src: tuple[str, int], dst: tuple[str, int], seq: int, ack: int, flags: str,
        payload: bytes = b"") -> bytes:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                 / IP(src=src[0], dst=dst[0]) / TCP(sport=src[1], dport=dst[1], seq=seq,
                                                    ack=ack, flags=flags) / payload)


def run(frames: list[bytes], streams: TcpStreams | None = None) -> dict[int, list[object]]:
    st_ = streams or TcpStreams()
    out: dict[int, list[object]] = {}
    for i, f in enumerate(frames, 1):
        views = st_.feed(i, i * 1000, DEC.decode(f, 1))
        if views:
            out[i] = views
    return out


def handshake(cport: int = 40000, sport: int = 80) -> list[bytes]:
    c, s = ("10.0.0.1", cport), ("10.0.0.2", sport)
    return [seg(c, s, 100, 0, "S"), seg(s, c, 500, 101, "SA"), seg(c, s, 101, 501, "A")]


REQ = b"GET /index.html HTTP/1.1\r\nHost: example.org\r\n\r\n"
RESP = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3000\r\n\r\n"
        + b"x" * 3000)


def test_message_on_the_completing_frame_with_its_segments() -> None:
    c, s = CLIENT, SERVER
    frames = [*handshake(), seg(c, s, 101, 501, "PA", REQ)]
    head = len(RESP) - 3000
    parts = [RESP[:head + 1000], RESP[head + 1000:head + 2000], RESP[head + 2000:]]
    seq = 501
    for p in parts:
        frames.append(seg(s, c, seq, 101 + len(REQ), "PA", p))
        seq += len(p)
    got = run(frames)
    assert sorted(got) == [4, 7]
    req, resp = got[4][0], got[7][0]
    assert isinstance(req, Http) and req.method == b"GET" and req.frames == ((4, len(REQ)),)
    assert isinstance(resp, Http) and resp.status == 200 and resp.body_len == 3000
    assert resp.frames == ((5, len(parts[0])), (6, 1000), (7, 1000))


def test_out_of_order_retransmitted_and_overlapping() -> None:
    c, s = CLIENT, SERVER
    a, b, d = REQ[:10], REQ[10:30], REQ[30:]
    frames = [
        *handshake(),
        seg(c, s, 101 + 10, 501, "PA", b),  # after a gap
        seg(c, s, 101, 501, "PA", a),  # fills it
        seg(c, s, 101, 501, "PA", a),  # retransmission: nothing new
        seg(c, s, 101 + 25, 501, "PA", REQ[25:]),  # overlaps, completes
    ]
    got = run(frames)
    assert list(got) == [7]
    m = got[7][0]
    assert bytes(m.buf) == REQ and m.frames == ((5, 10), (4, 20), (7, len(d) + 0))


def test_pipelined_messages_in_one_segment_and_a_midstream_start() -> None:
    c, s = CLIENT, SERVER
    two = REQ + REQ.replace(b"/index.html", b"/b")
    got = run([seg(c, s, 9000, 1, "PA", two)])  # no handshake seen
    assert [m.target for m in got[1]] == [b"/index.html", b"/b"]


def test_not_the_protocol_is_given_up() -> None:
    c, s = CLIENT, SERVER
    streams = TcpStreams()
    got = run([*handshake(), seg(c, s, 101, 501, "PA", b"\x00\x01binary"),
               seg(c, s, 109, 501, "PA", REQ)], streams)
    assert got == {} and streams.last_dead


def test_body_until_close_and_kept_prefix() -> None:
    c, s = CLIENT, SERVER
    resp = b"HTTP/1.0 200 OK\r\n\r\n" + b"y" * 5000
    frames = [*handshake(), seg(s, c, 501, 101, "PA", resp[:3000]),
              seg(s, c, 3501, 101, "PA", resp[3000:]), seg(s, c, 501 + len(resp), 101, "FA")]
    got = run(frames, TcpStreams(keep=1000))
    m = got[6][0]
    assert m.status == 200 and m.length == len(resp) and len(m.buf) <= 3000
    assert m.body_len == 5000


def test_cutter_bounds_a_message_that_never_ends() -> None:
    cut = Cutter(Http.pdu_len, max_pdu=4096)
    assert cut.push(1, b"GET / HTTP/1.1\r\nX: " + b"a" * 5000) == []
    assert not cut.buf and cut.resync  # given up, waits for a message start
    assert [len(p[0]) for p in cut.push(2, REQ)] == [len(REQ)]


def test_tls_handshake_message_across_records_and_segments() -> None:
    c, s = ("10.0.0.1", 40000), ("10.0.0.2", 443)
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + b"\x00\x00"
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    rec1 = b"\x16\x03\x01" + struct.pack("!H", 20) + hs[:20]
    rec2 = b"\x16\x03\x01" + struct.pack("!H", len(hs) - 20) + hs[20:]
    stream = rec1 + rec2
    frames = [*handshake(40000, 443), seg(c, s, 101, 501, "PA", stream[:10]),
              seg(c, s, 111, 501, "PA", stream[10:])]
    got = run(frames)
    (t,) = got[5]
    assert t.name == "tls" and [r.length for r in t.records] == [20, len(hs) - 20]
    assert [h.type for h in t.handshakes] == [1] and t.frames == ((4, 10), (5, len(stream) - 10))


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 3000), st.binary(max_size=300),
                          st.sampled_from(["PA", "A", "FA", "RA", "S"]), st.booleans()),
                max_size=25),
       st.sampled_from([80, 443, 53]))
def test_random_segment_streams_never_raise(segs: list[tuple[int, bytes, str, bool]],
                                            port: int) -> None:
    streams = TcpStreams(max_pdu=2048, keep=512)
    c, s = ("10.0.0.1", 40000), ("10.0.0.2", port)
    for i, (off, data, flags, back) in enumerate(segs, 1):
        raw = seg(s, c, 500 + off, 1, flags, data) if back else seg(c, s, 100 + off, 1, flags,
                                                                       data)
        for v in streams.feed(i, i, DEC.decode(raw, 1)):
            v.fields()
    streams.finish()
