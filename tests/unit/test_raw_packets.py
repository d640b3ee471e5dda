"""rawlab.raw.packets: hand-built packets match scapy's byte for byte, checksums included."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6

from rawlab.decode.dispatch import Decoder
from rawlab.raw import packets
from rawlab.raw.packets import ACK, FIN, PSH, SYN
from rawlab.records import LinkType

A4, B4 = "10.0.0.1", "10.0.0.2"
A6, B6 = "fd00::1", "fd00::2"


def p(addr: str) -> bytes:
    return ipaddress.ip_address(addr).packed


def test_syn_v4_matches_scapy() -> None:
    seg = packets.tcp_segment(p(A4), p(B4), 61234, 80, 0x12345678, 0, SYN,
                              options=packets.mss_option(1460))
    ours = packets.ipv4_header(p(A4), p(B4), 6, len(seg), ttl=7, ident=4242) + seg
    theirs = bytes(IP(src=A4, dst=B4, ttl=7, id=4242, flags="DF")
                   / TCP(sport=61234, dport=80, seq=0x12345678, flags="S", window=64240,
                         options=[("MSS", 1460)]))
    assert ours == theirs


def test_syn_v6_matches_scapy() -> None:
    seg = packets.tcp_segment(p(A6), p(B6), 61234, 443, 1, 0, SYN,
                              options=packets.mss_option(1440))
    ours = packets.ipv6_header(p(A6), p(B6), 6, len(seg), hop_limit=3) + seg
    theirs = bytes(IPv6(src=A6, dst=B6, hlim=3)
                   / TCP(sport=61234, dport=443, seq=1, flags="S", window=64240,
                         options=[("MSS", 1440)]))
    assert ours == theirs


@settings(max_examples=60, deadline=None)
@given(seq=st.integers(0, 2**32 - 1), ack=st.integers(0, 2**32 - 1),
       flags=st.sampled_from([ACK, PSH | ACK, FIN | ACK, SYN | ACK, 0x04]),
       window=st.integers(0, 65535), payload=st.binary(max_size=40), v6=st.booleans())
def test_tcp_checksum_matches_scapy(seq: int, ack: int, flags: int, window: int,
                                    payload: bytes, v6: bool) -> None:
    src, dst = (A6, B6) if v6 else (A4, B4)
    seg = packets.tcp_segment(p(src), p(dst), 1000, 2000, seq, ack, flags, window=window,
                              payload=payload)
    ip = IPv6(src=src, dst=dst) if v6 else IP(src=src, dst=dst)
    theirs = bytes(ip / TCP(sport=1000, dport=2000, seq=seq, ack=ack, flags=flags,
                            window=window) / payload)
    assert seg == theirs[40 if v6 else 20:]


def test_icmp_echo_matches_scapy() -> None:
    payload = packets.echo_payload(56, 1_700_000_000_123_456_789)
    ours = packets.icmp_echo(0xBEEF, 3, payload)
    theirs = bytes(IP(src=A4, dst=B4) / ICMP(id=0xBEEF, seq=3) / payload)[20:]
    assert ours == theirs


def test_icmpv6_echo_matches_scapy() -> None:
    payload = packets.echo_payload(13, 5)
    ours = packets.icmpv6_echo(0x1234, 9, payload, p(A6), p(B6))
    theirs = bytes(IPv6(src=A6, dst=B6) / ICMPv6EchoRequest(id=0x1234, seq=9, data=payload))[40:]
    assert ours == theirs


def test_decoder_calls_our_checksums_good() -> None:
    seg = packets.tcp_segment(p(A4), p(B4), 1, 2, 3, 4, PSH | ACK, payload=b"odd")
    pkt = Decoder().decode(packets.ipv4_header(p(A4), p(B4), 6, len(seg)) + seg, LinkType.RAW)
    assert pkt.checksum("ipv4").verdict.value == "good"
    assert pkt.checksum("tcp").verdict.value == "good"
    icmp6 = packets.icmpv6_echo(1, 1, b"x", p(A6), p(B6))
    pkt = Decoder().decode(packets.ipv6_header(p(A6), p(B6), 58, len(icmp6)) + icmp6,
                           LinkType.RAW)
    assert pkt.checksum("icmpv6").verdict.value == "good"


def test_echo_payload_layout() -> None:
    assert packets.echo_payload(4, 99) == bytes([8, 9, 10, 11])
    pl = packets.echo_payload(10, 0x0102030405060708)
    assert pl[:8] == bytes(range(1, 9)) and pl[8:] == bytes([16, 17])
