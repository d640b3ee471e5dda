"""Cisco VN-Tag (802.1Qbh; EtherType 0x8926): a 4-byte tag and the EtherType after it.

    v = Vntag(body)
    v.dir, v.ptr, v.dst, v.looped, v.r, v.version, v.src    # the tag's fields
    v.etype                                                 # what follows
"""

from __future__ import annotations

import struct
from typing import ClassVar

from construct import Int16ub, Int32ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

ETH_P_VNTAG = 0x8926
VNTAG_HLEN = 6
VNTAG_HEADER = Struct("tag" / Int32ub, "etype" / Int16ub)
_HDR = struct.Struct("!IH")


class Vntag(View):
    __slots__ = ("dir", "dst", "etype", "looped", "ptr", "r", "src", "version")
    name: ClassVar[str] = "vntag"
    next_table: ClassVar[str] = "ethertype"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("dir", 0, 1), ("ptr", 0, 1), ("dst", 0, 2), ("looped", 2, 1), ("r", 2, 1),
        ("version", 2, 1), ("src", 2, 2), ("etype", 4, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, VNTAG_HLEN)
        t, self.etype = _HDR.unpack_from(hdr)
        self.dir, self.ptr, self.dst = t >> 31, t >> 30 & 1, t >> 16 & 0x3FFF
        self.looped, self.r, self.version, self.src = (
            t >> 15 & 1, t >> 14 & 1, t >> 12 & 3, t & 0xFFF)
        self.malformed = False

    @property
    def header_len(self) -> int:
        return VNTAG_HLEN

    @property
    def next_key(self) -> int:
        return self.etype
