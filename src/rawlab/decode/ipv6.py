"""IPv6 (RFC 8200): fixed header and the extension header chain.

    ip = Ipv6(packet)
    ip.version, ip.traffic_class, ip.flow_label, ip.payload_length, ip.next_header,
    ip.hop_limit, ip.src, ip.dst            # ints; src/dst are 16-byte bytes
    ip.ext_headers          # tuple[ExtHeader, ...] in chain order (raw bytes kept)
    ip.proto                # the upper-layer protocol after the chain (59: none)
    ip.header_len           # 40 + every extension header
    ip.fragment             # Fragment(offset, more, id) when a fragment header is present
    ip.payload              # upper-layer bytes, bounded by payload_length

The chain is walked through Hop-by-Hop (0), Routing (43), Fragment (44),
Destination Options (60), AH (51), Mobility (135), HIP (139), Shim6 (140) and
the experimental 253/254. ESP (50) ends it: what follows is encrypted.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar, NamedTuple

from construct import BitsInteger, BitStruct, Bytes, Int8ub, Int16ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

IPV6_HLEN = 40
NH_HOPOPTS = 0
NH_ROUTING = 43
NH_FRAGMENT = 44
NH_ESP = 50
NH_AH = 51
NH_NONE = 59
NH_DSTOPTS = 60
NH_MOBILITY = 135
NH_HIP = 139
NH_SHIM6 = 140
EXT_HEADERS = frozenset(
    (NH_HOPOPTS, NH_ROUTING, NH_FRAGMENT, NH_AH, NH_DSTOPTS, NH_MOBILITY, NH_HIP, NH_SHIM6,
     253, 254)
)
MAX_EXT = 16

IPV6_HEADER = Struct(
    "vtf" / BitStruct(
        "version" / BitsInteger(4), "traffic_class" / BitsInteger(8),
        "flow_label" / BitsInteger(20),
    ),
    "payload_length" / Int16ub,
    "next_header" / Int8ub,
    "hop_limit" / Int8ub,
    "src" / Bytes(16),
    "dst" / Bytes(16),
)
FRAGMENT_HEADER = Struct(
    "next_header" / Int8ub, "reserved" / Int8ub,
    "frag" / BitStruct("offset" / BitsInteger(13), "res" / BitsInteger(2), "m" / BitsInteger(1)),
    "id" / Bytes(4),
)

_HDR = struct.Struct("!IHBB16s16s")
_FRAG = struct.Struct("!BBHI")


class ExtHeader(NamedTuple):
    """One extension header: its type, offset in the packet, length, next header, raw bytes."""

    type: int
    offset: int
    length: int
    next_header: int
    data: bytes


class Fragment(NamedTuple):
    offset: int  # in 8-byte units, as on the wire
    more: bool
    id: int


class Ipv6(View):
    __slots__ = (
        "dst",
        "ext_headers",
        "flow_label",
        "hlen",
        "hop_limit",
        "next_header",
        "payload_length",
        "proto",
        "src",
        "traffic_class",
        "version",
    )
    name: ClassVar[str] = "ipv6"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("version", 0, 1), ("traffic_class", 0, 2), ("flow_label", 1, 3),
        ("payload_length", 4, 2), ("next_header", 6, 1), ("hop_limit", 7, 1),
        ("src", 8, 16), ("dst", 24, 16),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, IPV6_HLEN)
        vtf, self.payload_length, nh, self.hop_limit, self.src, self.dst = _HDR.unpack_from(hdr)
        self.version = vtf >> 28
        self.traffic_class = (vtf >> 20) & 0xFF
        self.flow_label = vtf & 0xFFFFF
        self.next_header = nh
        self.malformed = self.version != 6
        n = len(mv)
        off = IPV6_HLEN
        exts: list[ExtHeader] = []
        while nh in EXT_HEADERS and not trunc:
            if len(exts) == MAX_EXT:
                self.malformed = True
                break
            if off + 2 > n:
                trunc = True
                break
            if nh == NH_FRAGMENT:
                ln = 8
            elif nh == NH_AH:
                ln = (mv[off + 1] + 2) * 4
            else:
                ln = (mv[off + 1] + 1) * 8
            nxt = mv[off]
            exts.append(ExtHeader(nh, off, ln, nxt, bytes(mv[off : off + ln])))
            if off + ln > n:
                trunc = True
            off += ln
            if nh == NH_FRAGMENT and off <= n and _FRAG.unpack_from(mv, off - 8)[2] >> 3:
                nh = nxt
                break  # a later fragment: the upper-layer header is not here
            nh = nxt
        self.ext_headers = tuple(exts)
        self.proto = nh
        self.hlen = off
        pl = self.payload_length
        if pl and IPV6_HLEN + pl < off:
            self.malformed = True
        self.truncated = trunc or n < IPV6_HLEN + pl

    @property
    def header_len(self) -> int:
        return self.hlen

    @property
    def tso(self) -> bool:
        """Payload length 0 without a jumbogram: filled in by the NIC (or a jumbo)."""
        return self.payload_length == 0 and self.next_header != NH_NONE

    @property
    def end(self) -> int:
        n = len(self.buf)
        pl = self.payload_length
        if pl == 0:
            return n
        return min(IPV6_HLEN + pl, n)

    @property
    def l4_length(self) -> int:
        """Bytes of the upper-layer segment the header says (payload length minus the
        extension headers); the captured payload's length for payload length 0."""
        pl = self.payload_length
        ext = self.hlen - IPV6_HLEN
        return pl - ext if pl >= ext and pl else len(self.payload)

    @property
    def payload(self) -> memoryview:
        hl = min(self.hlen, len(self.buf))
        return self.buf[hl : max(self.end, hl)]

    @property
    def fragment(self) -> Fragment | None:
        for e in self.ext_headers:
            if e.type == NH_FRAGMENT and len(e.data) >= 8:
                _nh, _res, fo, ident = _FRAG.unpack_from(e.data)
                return Fragment(fo >> 3, bool(fo & 1), ident)
        return None

    @property
    def is_fragment(self) -> bool:
        f = self.fragment
        return f is not None and (f.more or f.offset != 0)

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        d["ext_headers"] = [
            {"type": e.type, "offset": e.offset, "length": e.length, "next_header": e.next_header}
            for e in self.ext_headers
        ]
        d["proto"] = self.proto
        return d
