"""Packets built by hand: the decoders' construct schemas are the layout, checksums are ours.

    ipv4_header(src, dst, proto, payload_len, ttl=64, ident=..)   -> 20 bytes, checksum filled
    tcp_segment(src, dst, sport, dport, seq, ack, flags, ...)      -> TCP header + payload,
                                                                      checksum over the v4/v6
                                                                      pseudo-header
    icmp_echo(ident, seq, payload)                                 -> ICMP echo request
    icmpv6_echo(ident, seq, payload, src, dst)                     -> ICMPv6 echo request
    ipv6_header(src, dst, next_header, payload_len, hop_limit)     -> 40 bytes (for showing
                                                                      what the kernel adds)

Addresses are packed bytes (4 or 16). The results are bytes, ready for sendto().
"""

from __future__ import annotations

import struct

from rawlab.decode.checksum import inet_checksum, pseudo_header_v4, pseudo_header_v6
from rawlab.decode.icmp import ICMP_ECHO, ICMP_HEADER
from rawlab.decode.icmpv6 import ICMPV6_ECHO_REQUEST, ICMPV6_HEADER
from rawlab.decode.ipv4 import IP_DF, IPV4_HEADER
from rawlab.decode.ipv6 import IPV6_HEADER
from rawlab.decode.tcp import TCP_HEADER, TCPOPT_MSS

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_ICMPV6 = 58

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def mss_option(mss: int) -> bytes:
    """The MSS option (kind 2, length 4)."""
    return struct.pack("!BBH", TCPOPT_MSS, 4, mss)


def ipv4_header(src: bytes, dst: bytes, proto: int, payload_len: int, *, ttl: int = 64,
                ident: int = 0, tos: int = 0, dont_fragment: bool = True) -> bytes:
    """A 20-byte IPv4 header with its checksum (what IP_HDRINCL asks us to supply)."""
    fields = {
        "vihl": {"version": 4, "ihl": 5}, "tos": tos, "total_length": 20 + payload_len,
        "id": ident, "frag": {"flags": IP_DF if dont_fragment else 0, "frag_offset": 0},
        "ttl": ttl, "proto": proto, "checksum": 0, "src": src, "dst": dst,
    }
    hdr = IPV4_HEADER.build(fields)
    return hdr[:10] + inet_checksum(hdr).to_bytes(2, "big") + hdr[12:]


def ipv6_header(src: bytes, dst: bytes, next_header: int, payload_len: int, *,
                hop_limit: int = 64, traffic_class: int = 0, flow_label: int = 0) -> bytes:
    """A 40-byte IPv6 header (no checksum in IPv6)."""
    return IPV6_HEADER.build({
        "vtf": {"version": 6, "traffic_class": traffic_class, "flow_label": flow_label},
        "payload_length": payload_len, "next_header": next_header, "hop_limit": hop_limit,
        "src": src, "dst": dst,
    })


def pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """The folded pseudo-header sum for either family (by address length)."""
    if len(src) == 16:
        return pseudo_header_v6(src, dst, proto, length)
    return pseudo_header_v4(src, dst, proto, length)


def tcp_segment(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
                *, window: int = 64240, options: bytes = b"", payload: bytes = b"",
                urgptr: int = 0) -> bytes:
    """A TCP header (+ options, padded to 4 bytes) and payload, checksum filled."""
    if len(options) % 4:
        options += b"\x00" * (4 - len(options) % 4)  # EOL padding
    hdr = TCP_HEADER.build({
        "sport": sport, "dport": dport, "seq": seq & 0xFFFFFFFF, "ack": ack & 0xFFFFFFFF,
        "off": {"dataofs": 5 + len(options) // 4, "reserved": 0, "flags": flags},
        "window": window, "checksum": 0, "urgptr": urgptr,
    })
    seg = hdr + options + payload
    csum = inet_checksum(seg, pseudo_header(src, dst, IPPROTO_TCP, len(seg)))
    return seg[:16] + csum.to_bytes(2, "big") + seg[18:]


def _echo(schema: object, kind: int, ident: int, seq: int, payload: bytes, pseudo: int) -> bytes:
    hdr = schema.build({"type": kind, "code": 0, "checksum": 0,  # type: ignore[attr-defined]
                        "rest": (ident & 0xFFFF) << 16 | (seq & 0xFFFF)})
    msg = hdr + payload
    csum = inet_checksum(msg, pseudo)
    return msg[:2] + csum.to_bytes(2, "big") + msg[4:]


def icmp_echo(ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMP echo request (type 8) with its checksum (ICMP has no pseudo-header)."""
    return _echo(ICMP_HEADER, ICMP_ECHO, ident, seq, payload, 0)


def icmpv6_echo(ident: int, seq: int, payload: bytes, src: bytes, dst: bytes) -> bytes:
    """An ICMPv6 echo request (type 128), checksum over the IPv6 pseudo-header."""
    length = 8 + len(payload)
    return _echo(ICMPV6_HEADER, ICMPV6_ECHO_REQUEST, ident, seq, payload,
                 pseudo_header_v6(src, dst, IPPROTO_ICMPV6, length))


def echo_payload(size: int, ts_ns: int) -> bytes:
    """ping's layout: the send time first (8 bytes, when it fits), then 0x08, 0x09, …"""
    pattern = bytes((i + 8) & 0xFF for i in range(size))
    if size >= 8:
        return ts_ns.to_bytes(8, "big") + pattern[8:]
    return pattern
