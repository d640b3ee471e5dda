"""VXLAN (RFC 7348, UDP 4789) and VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe, UDP 4790).

    v = Vxlan(datagram)
    v.flags                # 16 bits: 0x0800 = I (VNI valid); G (0x8000) and A (0x0040)
                           # of the group policy extension
    v.gbp                  # group policy id (16 bits; 0 without the extension)
    v.vni, v.reserved8     # 24-bit network identifier, last byte
    v.payload              # the inner Ethernet frame

    g = VxlanGpe(datagram)
    g.flags                # 8 bits: version (0x30), I (0x08), P (0x04: next protocol
                           # present), O (0x01: OAM)
    g.reserved_16, g.next_proto, g.vni, g.reserved8
    g.payload              # by next_proto: 1 IPv4, 2 IPv6, 3 Ethernet, 4 NSH, 5 MPLS
"""

from __future__ import annotations

import struct
from typing import ClassVar

from construct import BitsInteger, BitStruct, Byte, Int16ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

VXLAN_PORT = 4789
VXLAN_GPE_PORT = 4790
VXLAN_HLEN = 8
VXLAN_FLAG_I = 0x0800
#: the next-protocol numbers VXLAN-GPE and NSH share, as EtherTypes
NEXT_PROTO_ETHERTYPE = {1: 0x0800, 2: 0x86DD, 3: 0x6558, 4: 0x894F, 5: 0x8847}

VXLAN_HEADER = Struct("flags" / Int16ub, "gbp" / Int16ub,
                      "vni" / BitStruct("vni" / BitsInteger(24), "reserved8" / BitsInteger(8)))
VXLAN_GPE_HEADER = Struct("flags" / Byte, "reserved_16" / Int16ub, "next_proto" / Byte,
                          "vni" / BitStruct("vni" / BitsInteger(24),
                                            "reserved8" / BitsInteger(8)))
_HDR = struct.Struct("!HHI")
_GPE = struct.Struct("!BHBI")


class Vxlan(View):
    __slots__ = ("flags", "gbp", "reserved8", "vni")
    name: ClassVar[str] = "vxlan"
    next_table: ClassVar[str] = "encap"
    next_key: ClassVar[str] = "eth"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("flags", 0, 2), ("gbp", 2, 2), ("vni", 4, 3), ("reserved8", 7, 1),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, VXLAN_HLEN)
        self.flags, self.gbp, v = _HDR.unpack_from(hdr)
        self.vni, self.reserved8 = v >> 8, v & 0xFF
        self.malformed = False

    @property
    def header_len(self) -> int:
        return VXLAN_HLEN


class VxlanGpe(View):
    __slots__ = ("flags", "next_proto", "reserved8", "reserved_16", "vni")
    name: ClassVar[str] = "vxlan_gpe"
    next_table: ClassVar[str] = "ethertype"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("flags", 0, 1), ("reserved_16", 1, 2), ("next_proto", 3, 1), ("vni", 4, 3),
        ("reserved8", 7, 1),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, VXLAN_HLEN)
        self.flags, self.reserved_16, self.next_proto, v = _GPE.unpack_from(hdr)
        self.vni, self.reserved8 = v >> 8, v & 0xFF
        self.malformed = False

    @property
    def header_len(self) -> int:
        return VXLAN_HLEN

    @property
    def next_key(self) -> int | None:
        return NEXT_PROTO_ETHERTYPE.get(self.next_proto)
