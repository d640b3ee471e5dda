"""Internet checksum: RFC 1071 golden values, a naive reference, scapy's values."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rawlab.decode.checksum import (
    ChecksumStatus,
    CsumHint,
    Verdict,
    inet_checksum,
    inet_sum,
    verify_ipv4_header,
    verify_l4_v4,
    verify_l4_v6,
    worst,
)

pytestmark = pytest.mark.unit


def naive_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = 0
    for i in range(0, len(data), 2):
        s += data[i] << 8 | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return s


def test_rfc1071_example() -> None:
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert inet_sum(data) == 0xDDF2
    assert inet_checksum(data) == 0x220D


def test_ipv4_header_golden() -> None:
    hdr = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert inet_checksum(hdr) == 0xB861
    good = hdr[:10] + b"\xb8\x61" + hdr[12:]
    assert verify_ipv4_header(good) == ChecksumStatus(Verdict.GOOD, 0xB861)
    assert verify_ipv4_header(hdr) == ChecksumStatus(Verdict.BAD, 0, 0xB861)
    assert verify_ipv4_header(good[:15]).verdict is Verdict.UNVERIFIED


def test_edge_sums() -> None:
    assert inet_sum(b"") == 0 and inet_checksum(b"") == 0xFFFF
    assert inet_sum(b"\xff\xff") == 0xFFFF
    assert inet_sum(b"\x00\x00\x00") == 0
    assert inet_sum(b"\xff") == 0xFF00


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_fast_sum_matches_naive(data: bytes) -> None:
    assert inet_sum(data) == naive_sum(data)
    # a packet carrying its own checksum sums to 0xFFFF
    c = inet_checksum(data + (b"\x00" if len(data) % 2 else b""))
    padded = data + (b"\x00" if len(data) % 2 else b"")
    assert inet_sum(padded + c.to_bytes(2, "big")) == 0xFFFF


def test_against_scapy_all_transports() -> None:
    from scapy.all import ICMP, IP, TCP, UDP, ICMPv6EchoRequest, IPv6

    for p in (IP(src="10.1.2.3", dst="10.9.8.7") / TCP(sport=5, dport=6) / b"abc",
              IP(src="10.1.2.3", dst="10.9.8.7") / UDP(sport=5, dport=6) / b"abcde",
              IP() / ICMP(id=3) / b"xyz"):
        b = bytes(p)
        hl = (b[0] & 15) * 4
        off = {6: 16, 17: 6, 1: 2}[b[9]]
        st_ = verify_l4_v4(b[9], b[12:16], b[16:20], b[hl:], off)
        assert st_.verdict is Verdict.GOOD, p.summary()
        broken = b[hl:hl + off] + b"\x00\x01" + b[hl + off + 2:]
        bad = verify_l4_v4(b[9], b[12:16], b[16:20], broken, off)
        assert bad.verdict is Verdict.BAD and bad.expected == int.from_bytes(
            b[hl + off:hl + off + 2], "big")
    for p in (IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP() / b"q",
              IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP() / b"qq",
              IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest(data=b"hey")):
        b = bytes(p)
        off = {6: 16, 17: 6, 58: 2}[b[6]]
        assert verify_l4_v6(b[6], b[8:24], b[24:40], b[40:], off).verdict is Verdict.GOOD


def test_hints_and_truncation() -> None:
    seg = bytes(20)
    args = (6, bytes(4), bytes(4), seg, 16)
    assert verify_l4_v4(*args, hint=CsumHint.NOT_READY).verdict is Verdict.PARTIAL
    assert verify_l4_v4(*args, hint=CsumHint.VALID).verdict is Verdict.KERNEL_VERIFIED
    assert verify_l4_v4(*args, complete=False).verdict is Verdict.UNVERIFIED
    assert verify_l4_v4(6, bytes(4), bytes(4), b"\x00", 16).verdict is Verdict.UNVERIFIED


def test_udp6_zero_checksum_is_bad() -> None:
    from scapy.all import UDP, IPv6

    b = bytearray(bytes(IPv6() / UDP() / b"x"))
    b[46:48] = b"\x00\x00"
    st_ = verify_l4_v6(17, bytes(b[8:24]), bytes(b[24:40]), bytes(b[40:]), 6)
    assert st_.verdict is Verdict.BAD and st_.value == 0


def test_worst() -> None:
    g, b, u = (ChecksumStatus(Verdict.GOOD), ChecksumStatus(Verdict.BAD, 1, 2),
               ChecksumStatus(Verdict.UNVERIFIED))
    assert worst([g, u, b]) is b and worst([g, u]) is u and worst([]) is None
    assert str(b) == "bad" and not b.ok and g.ok
