"""Malformed and truncated bytes never raise; the fast path names what decode names."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rawlab.decode.dispatch import Decoder, Packet
from rawlab.decode.netlink import Netlink, attr_tree, parse_attrs
from rawlab.records import CsumHint, LinkType


def eth():
    """Explicit MACs: scapy must never resolve one (that would send ARP)."""
    from scapy.layers.l2 import Ether

    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


pytestmark = pytest.mark.unit

DEC = Decoder()
LINKTYPES = [int(t) for t in LinkType] + [0, 147]


def _seeds() -> list[tuple[bytes, int]]:
    from scapy.all import (
        ARP,
        ICMP,
        IP,
        TCP,
        UDP,
        Dot1AD,
        Dot1Q,
        ICMPv6EchoRequest,
        IPv6,
        IPv6ExtHdrFragment,
        IPv6ExtHdrHopByHop,
    )
    from scapy.layers.l2 import CookedLinux, CookedLinuxV2

    opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 2)), ("NOP", None),
            ("WScale", 7)]
    return [
        (bytes(eth() / IP(options=b"\x94\x04\x00\x00") / TCP(options=opts) / b"data"), 1),
        (bytes(eth() / Dot1AD(vlan=3) / Dot1Q(vlan=4) / IP() / UDP() / b"hi"), 1),
        (bytes(eth() / ARP()), 1),
        (bytes(IP() / ICMP() / b"abcd"), 101),
        (bytes(IPv6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(m=1) / ICMPv6EchoRequest()),
         101),
        (bytes(CookedLinux(proto=0x0800) / IP() / UDP()), 113),
        (bytes(CookedLinuxV2(proto=0x86DD) / IPv6() / TCP(flags="SA")), 276),
        (struct.pack("!HHH8sH", 4, 824, 0, bytes(8), 0)
         + struct.pack("=IHHII", 24, 16, 0, 1, 2) + bytes(8), 253),
    ]


SEEDS = _seeds()
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def exercise(p: Packet) -> None:
    """Touch everything a presenter would."""
    _ = (p.names, p.truncated, p.malformed, p.checksums, p.csum_status, bytes(p.payload))
    for lay in p.layers:
        lay.fields()
        repr(lay)
        _ = (lay.header_len, bytes(lay.payload))
        for attr in ("options", "mss", "wscale", "sack", "timestamps", "mptcp", "sack_permitted",
                     "fragment", "is_fragment", "target", "address", "vlan", "dscp"):
            getattr(lay, attr, None)
        for o in getattr(lay, "options", ()):
            if hasattr(o, "value"):
                o.value()
        for m in getattr(lay, "messages", ()):
            _ = (attr_tree(m), m.attrs, m.error, m.fields(), m.payload)


@SETTINGS
@given(st.sampled_from(LINKTYPES), st.binary(max_size=120), st.sampled_from(list(CsumHint)))
def test_random_bytes_never_raise(linktype: int, data: bytes, hint: CsumHint) -> None:
    p = DEC.decode(data, linktype, hint)
    exercise(p)
    assert DEC.path(data, linktype) == p.names


@SETTINGS
@given(st.sampled_from(SEEDS), st.data())
def test_truncations_and_mutations_never_raise(seed: tuple[bytes, int],
                                               data: st.DataObject) -> None:
    raw, linktype = seed
    b = bytearray(raw)
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(b)))
    p = DEC.decode(bytes(b[:cut]), linktype)
    exercise(p)
    assert DEC.path(bytes(b[:cut]), linktype) == p.names


def test_every_truncation_of_every_seed_is_marked() -> None:
    for raw, linktype in SEEDS:
        full = DEC.decode(raw, linktype)
        for cut in range(len(raw)):
            p = DEC.decode(raw[:cut], linktype)
            exercise(p)
            # either a layer says it is cut short, or whole layers are missing
            assert p.truncated or len(p.layers) < len(full.layers) or p.names != full.names, (
                linktype, cut)


@SETTINGS
@given(st.binary(max_size=200), st.sampled_from([None, 0, 16, 12, 4]))
def test_netlink_random_bytes(data: bytes, family: int | None) -> None:
    nl = Netlink(data, family)
    for m in nl.messages:
        _ = (m.attrs, m.error, m.fields())
        for a in attr_tree(m):
            a.nested()
            a.as_dict()
    parse_attrs(data, 0, len(data))


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=12)), max_size=6))
def test_netlink_wellformed_attrs_roundtrip(attrs: list[tuple[int, bytes]]) -> None:
    raw = b""
    for t, v in attrs:
        a = struct.pack("=HH", 4 + len(v), t & 0x3FFF) + v
        raw += a + bytes(-len(a) % 4)
    got, trunc, bad = parse_attrs(raw, 0, len(raw))
    assert not trunc and not bad
    assert [(a.type, a.data) for a in got] == [(t & 0x3FFF, v) for t, v in attrs]
