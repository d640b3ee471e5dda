"""Cisco HDLC (link type C_HDLC, 104; also inside PPP_HDLC records) and its SLARP.

    c = Chdlc(frame)
    c.address, c.control, c.protocol   # 0x0f unicast / 0x8f multicast, 0, an EtherType
                                       # (0x8035 SLARP and 0x2000 CDP are Cisco's own)
    s = Slarp(payload)
    s.ptype                            # 0 request, 1 reply, 2 line keepalive
    s.address, s.mask                  # request/reply (4-byte bytes)
    s.mysequence, s.yoursequence, s.reliability     # keepalive
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import Byte, Bytes, Int16ub, Int32ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

CHDLC_HLEN = 4
CHDLC_UNICAST = 0x0F
CHDLC_MULTICAST = 0x8F
CHDLC_SLARP = 0x8035
CHDLC_CDP = 0x2000
#: protocol values that are not EtherTypes here (the "chdlc" dispatch table)
CHDLC_OWN = frozenset((CHDLC_SLARP, CHDLC_CDP))
SLARP_REQUEST = 0
SLARP_REPLY = 1
SLARP_LINECHECK = 2
SLARP_LEN = 14

CHDLC_HEADER = Struct("address" / Byte, "control" / Byte, "protocol" / Int16ub)
SLARP_PACKET = Struct("ptype" / Int32ub, "body" / Bytes(10))

_HDR = struct.Struct("!BBH")
_SLARP = struct.Struct("!I4s4sH")
_KEEP = struct.Struct("!IIIH")


class Chdlc(View):
    __slots__ = ("address", "control", "protocol")
    name: ClassVar[str] = "chdlc"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("address", 0, 1), ("control", 1, 1), ("protocol", 2, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, CHDLC_HLEN)
        self.address, self.control, self.protocol = _HDR.unpack_from(hdr)
        self.malformed = False

    @property
    def header_len(self) -> int:
        return CHDLC_HLEN

    @property
    def next_table(self) -> str:
        return "chdlc" if self.protocol in CHDLC_OWN else "ethertype"

    @property
    def next_key(self) -> int:
        return self.protocol


class Slarp(View):
    __slots__ = ("address", "mask", "mysequence", "ptype", "reliability", "yoursequence")
    name: ClassVar[str] = "slarp"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (("ptype", 0, 4),)

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, SLARP_LEN)
        self.ptype = _SLARP.unpack_from(hdr)[0]
        self.address = self.mask = None
        self.mysequence = self.yoursequence = self.reliability = None
        n = len(mv)
        if self.ptype == SLARP_LINECHECK:
            _t, my, yours, rel = _KEEP.unpack_from(hdr)
            self.mysequence = my if n >= 8 else None
            self.yoursequence = yours if n >= 12 else None
            self.reliability = rel if n >= 14 else None
            self.truncated = n < 14
        elif self.ptype in (SLARP_REQUEST, SLARP_REPLY):
            _t, addr, mask, _u = _SLARP.unpack_from(hdr)
            self.address = addr if n >= 8 else None
            self.mask = mask if n >= 12 else None
            self.truncated = n < 12
        else:
            self.truncated = n < 4
        self.malformed = False

    @property
    def header_len(self) -> int:
        return min(len(self.buf), SLARP_LEN)

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        if self.ptype == SLARP_LINECHECK:
            d.update(mysequence=self.mysequence, yoursequence=self.yoursequence,
                     reliability=self.reliability)
        elif self.ptype in (SLARP_REQUEST, SLARP_REPLY):
            d.update(address=self.address, mask=self.mask)
        return d
