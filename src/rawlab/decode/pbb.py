"""IEEE 802.1ah Provider Backbone Bridging (EtherType 0x88e7): the I-TAG and the customer
addresses it carries.

    p = Pbb(body)
    p.priority, p.drop, p.nca, p.res1, p.res2, p.isid   # the 32-bit I-TAG TCI fields
    p.cdst, p.csrc          # customer destination and source addresses (6-byte bytes)
    p.etype                 # the customer frame's EtherType
    p.payload
"""

from __future__ import annotations

import struct
from typing import ClassVar

from construct import Bytes, Int16ub, Int32ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

ETH_P_PBB = 0x88E7
PBB_HLEN = 18
PBB_HEADER = Struct("itag" / Int32ub, "cdst" / Bytes(6), "csrc" / Bytes(6), "etype" / Int16ub)
_HDR = struct.Struct("!I6s6sH")


class Pbb(View):
    __slots__ = ("cdst", "csrc", "drop", "etype", "isid", "nca", "priority", "res1", "res2")
    name: ClassVar[str] = "ieee8021ah"
    next_table: ClassVar[str] = "ethertype"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("priority", 0, 1), ("drop", 0, 1), ("nca", 0, 1), ("res1", 0, 1), ("res2", 0, 1),
        ("isid", 1, 3), ("cdst", 4, 6), ("csrc", 10, 6), ("etype", 16, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, PBB_HLEN)
        tci, self.cdst, self.csrc, self.etype = _HDR.unpack_from(hdr)
        self.priority, self.drop, self.nca = tci >> 29, tci >> 28 & 1, tci >> 27 & 1
        self.res1, self.res2, self.isid = tci >> 26 & 1, tci >> 24 & 3, tci & 0xFFFFFF
        self.malformed = False

    @property
    def header_len(self) -> int:
        return PBB_HLEN

    @property
    def next_key(self) -> int:
        return self.etype
