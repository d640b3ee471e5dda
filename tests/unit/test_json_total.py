"""JSON output is total (issue 13): every value any decoder gives has a JSON form, so
`read --json` / `capture --json` never die on a packet, however odd."""

from __future__ import annotations

import json
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rawlab.decode.dispatch import Decoder
from rawlab.present.packet import JsonSink, packet_json, tree
from rawlab.records import LinkType, Record

DEC = Decoder()
ETH = bytes.fromhex("020000000002020000000001")


def tcp_with_options(opts: bytes) -> bytes:
    opts += bytes(-len(opts) % 4)
    tcp = struct.pack("!HHIIBBHHH", 1, 2, 3, 4, (5 + len(opts) // 4) << 4, 0x12, 5, 0, 0) + opts
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, bytes(4),
                     bytes(4))
    return ETH + b"\x08\x00" + ip + tcp


def as_json(data: bytes, linktype: int = LinkType.ETHERNET) -> dict:
    rec = Record(0, len(data), linktype, data)
    obj = packet_json(1, rec, DEC.decode(data, linktype), 0)
    list(tree(1, rec, DEC.decode(data, linktype), 0))  # the tree must not fail either
    return json.loads(json.dumps(obj))


def test_odd_but_legal_tcp_options() -> None:
    """User Timeout (28), and MSS / window scale of the wrong length: their bytes as hex."""
    for opts, want in [(b"\x1c\x04\x80\x0a", {"kind": 28, "name": "user_timeout",
                                              "value": 0x800A}),
                       (b"\x02\x03\x05", {"kind": 2, "name": "mss", "hex": "05"}),
                       (b"\x03\x04\x07\x00", {"kind": 3, "name": "wscale", "hex": "0700"}),
                       (b"\x1c\x03\x01", {"kind": 28, "name": "user_timeout", "hex": "01"})]:
        got = as_json(tcp_with_options(opts))["tcp"]["options"][0]
        assert got == want, (opts, got)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=80))
def test_any_tcp_options_encode(opts: bytes) -> None:
    as_json(tcp_with_options(opts[:40]))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([int(t) for t in LinkType] + [0, 9, 105, 127, 147]),
       st.binary(max_size=200))
def test_any_bytes_of_any_link_type_encode(linktype: int, data: bytes) -> None:
    as_json(data, linktype)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=20, max_size=120))
def test_any_ipv4_and_ipv6_payloads_encode(tail: bytes) -> None:
    for et, head in ((b"\x08\x00", b"\x45"), (b"\x86\xdd", b"\x60")):
        as_json(ETH + et + head + tail)


def test_the_sink_writes_one_line_per_packet() -> None:
    import io

    out = io.StringIO()
    sink = JsonSink(out)
    data = tcp_with_options(b"\x1c\x04\x80\x0a")
    rec = Record(0, len(data), 1, data)
    sink.packet(1, rec, DEC.decode(data, 1), None)
    assert json.loads(out.getvalue())["tcp"]["options"][0]["value"] == 0x800A
