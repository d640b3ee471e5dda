"""SLIP records (link type SLIP, 8): libpcap's 16-byte pseudo-header, then the IP packet.

    s = Slip(record)
    s.direction          # 0 received, 1 sent (SLIPDIR_IN / SLIPDIR_OUT)
    s.chdr_type          # byte 1: 0x40 IP, 0x70 uncompressed TCP, 0x80.. compressed TCP
    s.chdr               # the 14 bytes of the (CSLIP) compressed header as captured
    s.payload            # the IP packet (IPv4 or IPv6 by its version nibble)

tcpdump decodes it (``print-sl.c``); Wireshark shows the record as data.
"""

from __future__ import annotations

import struct
from typing import ClassVar

from construct import Byte, Bytes, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

SLIP_HLEN = 16
SLIPDIR_IN = 0
SLIPDIR_OUT = 1
TYPE_IP = 0x40
TYPE_UNCOMPRESSED_TCP = 0x70
TYPE_COMPRESSED_TCP = 0x80

SLIP_HEADER = Struct("direction" / Byte, "chdr_type" / Byte, "chdr" / Bytes(14))
_HDR = struct.Struct("!BB14s")


class Slip(View):
    __slots__ = ("chdr", "chdr_type", "direction")
    name: ClassVar[str] = "slip"
    next_table: ClassVar[str] = "encap"
    next_key: ClassVar[str] = "ip"  # IPv4 or IPv6 by the version nibble
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("direction", 0, 1), ("chdr_type", 1, 1), ("chdr", 2, 14),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, SLIP_HLEN)
        self.direction, self.chdr_type, self.chdr = _HDR.unpack_from(hdr)
        self.malformed = self.direction > SLIPDIR_OUT

    @property
    def header_len(self) -> int:
        return SLIP_HLEN
