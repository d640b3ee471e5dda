"""ARP (RFC 826), any hardware/protocol address sizes.

    a = Arp(packet)
    a.htype, a.ptype, a.hlen, a.plen, a.op        # ints
    a.sha, a.spa, a.tha, a.tpa                    # bytes, sized by hlen/plen
"""

from __future__ import annotations

import struct
from typing import ClassVar

from construct import Bytes, Int8ub, Int16ub, Struct, this

from rawlab.decode.view import Buffer, View, as_view, pad

ARP_HLEN = 8
ARPOP_REQUEST = 1
ARPOP_REPLY = 2

ARP_PACKET = Struct(
    "htype" / Int16ub, "ptype" / Int16ub, "hlen" / Int8ub, "plen" / Int8ub, "op" / Int16ub,
    "sha" / Bytes(this.hlen), "spa" / Bytes(this.plen),
    "tha" / Bytes(this.hlen), "tpa" / Bytes(this.plen),
)
_HDR = struct.Struct("!HHBBH")


class Arp(View):
    __slots__ = ("hlen", "htype", "op", "plen", "ptype", "sha", "spa", "tha", "tpa")
    name: ClassVar[str] = "arp"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("htype", 0, 2), ("ptype", 2, 2), ("hlen", 4, 1), ("plen", 5, 1), ("op", 6, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, ARP_HLEN)
        self.htype, self.ptype, self.hlen, self.plen, self.op = _HDR.unpack_from(hdr)
        h, p = self.hlen, self.plen
        o = ARP_HLEN
        self.sha = bytes(mv[o : o + h])
        self.spa = bytes(mv[o + h : o + h + p])
        self.tha = bytes(mv[o + h + p : o + 2 * h + p])
        self.tpa = bytes(mv[o + 2 * h + p : o + 2 * h + 2 * p])
        self.truncated = trunc or len(mv) < self.header_len
        self.malformed = h == 0 or p == 0

    @property
    def header_len(self) -> int:
        return ARP_HLEN + 2 * (self.hlen + self.plen)

    def fields(self) -> dict[str, object]:
        d = super().fields()
        d.update(sha=self.sha, spa=self.spa, tha=self.tha, tpa=self.tpa)
        return d
