"""Network Service Header (RFC 8300; EtherType 0x894f, VXLAN-GPE, GRE).

    h = Nsh(packet)
    h.version, h.oam, h.critical, h.ttl, h.length   # length: the header in 4-byte words
    h.mdtype, h.next_proto      # MD type 1 (four fixed context words) or 2 (TLVs);
                                # next protocol: 1 IPv4, 2 IPv6, 3 Ethernet, 4 NSH, 5 MPLS
    h.spi, h.si                 # service path identifier (24 bits), service index
    h.context                   # MD type 1: the four 4-byte context headers
    h.metadata                  # MD type 2: tuple of (class, type, data) TLVs
    h.payload
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import BitsInteger, BitStruct

from rawlab.decode.tlv import MALFORMED, walk
from rawlab.decode.view import Buffer, View, as_view, pad
from rawlab.decode.vxlan import NEXT_PROTO_ETHERTYPE

ETH_P_NSH = 0x894F
NSH_BASE_LEN = 8
MD_TYPE_1 = 1
MD_TYPE_2 = 2

NSH_HEADER = BitStruct(
    "version" / BitsInteger(2), "oam" / BitsInteger(1), "critical" / BitsInteger(1),
    "ttl" / BitsInteger(6), "length" / BitsInteger(6), "reserved" / BitsInteger(4),
    "mdtype" / BitsInteger(4), "next_proto" / BitsInteger(8), "spi" / BitsInteger(24),
    "si" / BitsInteger(8),
)
_HDR = struct.Struct("!HBBI")


def _md_head(buf: memoryview, pos: int) -> tuple[int, int]:
    """(class << 8 | type, length in bytes); values are padded to 4 bytes."""
    return buf[pos] << 16 | buf[pos + 1] << 8 | buf[pos + 2], buf[pos + 3] & 0x7F


class Nsh(View):
    __slots__ = ("context", "critical", "length", "mdtype", "metadata", "next_proto", "oam",
                 "si", "spi", "ttl", "version")
    name: ClassVar[str] = "nsh"
    next_table: ClassVar[str] = "ethertype"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("version", 0, 1), ("oam", 0, 1), ("critical", 0, 1), ("ttl", 0, 2),
        ("length", 1, 1), ("mdtype", 2, 1), ("next_proto", 3, 1), ("spi", 4, 3),
        ("si", 7, 1),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, NSH_BASE_LEN)
        a, md, self.next_proto, sp = _HDR.unpack_from(hdr)
        self.version, self.oam, self.critical = a >> 14, a >> 13 & 1, a >> 12 & 1
        self.ttl, self.length = a >> 6 & 0x3F, a & 0x3F
        self.mdtype = md & 15
        self.spi, self.si = sp >> 8, sp & 0xFF
        end = self.length * 4
        self.malformed = end < NSH_BASE_LEN
        self.context: tuple[bytes, ...] = ()
        self.metadata: tuple[tuple[int, int, bytes], ...] = ()
        if self.mdtype == MD_TYPE_1 and not self.malformed:
            self.context = tuple(bytes(mv[o : o + 4]) for o in range(8, min(end, len(mv)) - 3, 4))
        elif self.mdtype == MD_TYPE_2 and not self.malformed:
            items, trouble = walk(mv, NSH_BASE_LEN, end, _md_head, 4, align=4)
            self.metadata = tuple((t.type >> 8, t.type & 0xFF, t.value) for t in items)
            self.malformed = trouble == MALFORMED
        self.truncated = trunc or len(mv) < end

    @property
    def header_len(self) -> int:
        return max(self.length * 4, NSH_BASE_LEN)

    @property
    def next_key(self) -> int | None:
        return NEXT_PROTO_ETHERTYPE.get(self.next_proto)

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        if self.mdtype == MD_TYPE_1:
            d["context"] = list(self.context)
        elif self.mdtype == MD_TYPE_2:
            d["metadata"] = [{"class": c, "type": t, "data": v} for c, t, v in self.metadata]
        return d
