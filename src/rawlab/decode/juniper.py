"""Juniper's capture header (link types JUNIPER_ETHER 178, JUNIPER_ATM1 137 and the
other JUNIPER_* types): magic ``MGC``, flags, optional extension TLVs.

    j = JuniperEther(record)         # Juniper(record) for the types rawlab goes no further in
    j.magic                          # 0x4d4743 ("MGC")
    j.flags                          # bit 0: packet came in, bit 1: no L2 header,
                                     # bit 7: extensions follow
    j.direction, j.l2hdr             # flags & 1, flags >> 1 & 1
    j.ext_total_len                  # bytes of extension TLVs (None: no extensions)
    j.extensions                     # tuple[Tlv]: 1-byte type, 1-byte length
    j.payload                        # JUNIPER_ETHER: the Ethernet frame (IP without L2)
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import Byte, Int24ub, Struct

from rawlab.decode.tlv import MALFORMED, TRUNCATED, Tlv, walk
from rawlab.decode.view import Buffer, View, as_view, pad

JUNIPER_MAGIC = 0x4D4743
JUNIPER_FLAG_PKT_IN = 0x01
JUNIPER_FLAG_NO_L2 = 0x02
JUNIPER_FLAG_EXT = 0x80

JUNIPER_HEADER = Struct("magic" / Int24ub, "flags" / Byte)
_HDR = struct.Struct("!I")
_H = struct.Struct("!H")


def _ext_head(buf: memoryview, pos: int) -> tuple[int, int]:
    return buf[pos], buf[pos + 1]


class Juniper(View):
    __slots__ = ("ext_total_len", "extensions", "flags", "hlen", "magic")
    name: ClassVar[str] = "juniper"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (("magic", 0, 3), ("flags", 3, 1))

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, 4)
        v = _HDR.unpack_from(hdr)[0]
        self.magic, self.flags = v >> 8, v & 0xFF
        self.malformed = self.magic != JUNIPER_MAGIC
        self.ext_total_len: int | None = None
        items: list[Tlv] = []
        hl = 4
        if self.flags & JUNIPER_FLAG_EXT and not self.malformed:
            if len(mv) >= 6:
                self.ext_total_len = ln = _H.unpack_from(mv, 4)[0]
                items, trouble = walk(mv, 6, 6 + ln, _ext_head, 2)
                trunc = trunc or trouble == TRUNCATED
                self.malformed = trouble == MALFORMED
                hl = 6 + ln
            else:
                trunc, hl = True, len(mv)
        self.extensions = tuple(items)
        self.hlen = hl
        self.truncated = trunc or len(mv) < hl

    @property
    def header_len(self) -> int:
        return self.hlen

    @property
    def direction(self) -> int:
        return self.flags & JUNIPER_FLAG_PKT_IN

    @property
    def l2hdr(self) -> int:
        return self.flags >> 1 & 1

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        d.update(direction=self.direction, l2hdr=self.l2hdr, ext_total_len=self.ext_total_len,
                 extensions=[{"type": t.type, "value": t.value} for t in self.extensions])
        return d


class JuniperEther(Juniper):
    """JUNIPER_ETHER: an Ethernet frame follows (an IP packet when ``l2hdr`` says none)."""

    __slots__ = ()
    next_table: ClassVar[str] = "encap"

    @property
    def next_key(self) -> str | None:
        if self.malformed:
            return None
        return "ip" if self.flags & JUNIPER_FLAG_NO_L2 else "eth"
