"""Geneve (RFC 8926, UDP 6081).

    g = Geneve(datagram)
    g.version, g.opt_len        # 2 bits; options length in 4-byte words (6 bits)
    g.flags                     # O (0x80: control), C (0x40: critical options present)
    g.proto_type                # an EtherType (0x6558: Ethernet)
    g.vni, g.reserved
    g.options                   # tuple of GeneveOption(cls, type, flags, offset, data)
    g.payload
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar, NamedTuple

from construct import BitsInteger, BitStruct, Byte, Int16ub, Struct

from rawlab.decode.tlv import MALFORMED, walk
from rawlab.decode.view import Buffer, View, as_view, pad

GENEVE_PORT = 6081
GENEVE_HLEN = 8

GENEVE_HEADER = Struct(
    "vo" / BitStruct("version" / BitsInteger(2), "opt_len" / BitsInteger(6)),
    "flags" / Byte, "proto_type" / Int16ub,
    "vni" / BitStruct("vni" / BitsInteger(24), "reserved" / BitsInteger(8)),
)
_HDR = struct.Struct("!BBHI")


class GeneveOption(NamedTuple):
    cls: int
    type: int
    flags: int  # the 3 reserved bits before the length
    offset: int
    data: bytes


def _opt_head(buf: memoryview, pos: int) -> tuple[int, int]:
    """(class << 8 | type, length in 4-byte words without the header)."""
    return buf[pos] << 16 | buf[pos + 1] << 8 | buf[pos + 2], buf[pos + 3] & 0x1F


class Geneve(View):
    __slots__ = ("flags", "opt_len", "options", "proto_type", "reserved", "version", "vni")
    name: ClassVar[str] = "geneve"
    next_table: ClassVar[str] = "ethertype"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("version", 0, 1), ("opt_len", 0, 1), ("flags", 1, 1), ("proto_type", 2, 2),
        ("vni", 4, 3), ("reserved", 7, 1),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, GENEVE_HLEN)
        vo, self.flags, self.proto_type, v = _HDR.unpack_from(hdr)
        self.version, self.opt_len = vo >> 6, vo & 0x3F
        self.vni, self.reserved = v >> 8, v & 0xFF
        end = GENEVE_HLEN + self.opt_len * 4
        items, trouble = walk(mv, GENEVE_HLEN, end, _opt_head, 4, unit=4)
        self.options = tuple(GeneveOption(t.type >> 8, t.type & 0xFF, mv[t.offset + 3] >> 5,
                                          t.offset, t.value) for t in items)
        self.truncated = trunc or len(mv) < end
        self.malformed = self.version != 0 or trouble == MALFORMED

    @property
    def header_len(self) -> int:
        return GENEVE_HLEN + self.opt_len * 4

    @property
    def next_key(self) -> int:
        return self.proto_type

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        d["options"] = [{"class": o.cls, "type": o.type, "flags": o.flags,
                         "length": 4 + len(o.data), "data": o.data} for o in self.options]
        return d
