"""ICMPv6 (RFC 4443) with the neighbour discovery target (RFC 4861).

    m = Icmpv6(message)
    m.type, m.code, m.checksum, m.rest      # ints; `rest` = bytes 4..8 as an int
    m.id, m.seq                             # echo request/reply (128/129)
    m.target                                # NS/NA/redirect target address (16 bytes) or None
    m.payload                               # after the 8-byte header
"""

from __future__ import annotations

import struct
from typing import ClassVar

from construct import Int8ub, Int16ub, Int32ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

ICMPV6_HLEN = 8
ICMPV6_DEST_UNREACH = 1
ICMPV6_PACKET_TOO_BIG = 2
ICMPV6_TIME_EXCEEDED = 3
ICMPV6_PARAM_PROB = 4
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129
ND_ROUTER_SOLICIT = 133
ND_ROUTER_ADVERT = 134
ND_NEIGHBOR_SOLICIT = 135
ND_NEIGHBOR_ADVERT = 136
ND_REDIRECT = 137

ICMPV6_HEADER = Struct("type" / Int8ub, "code" / Int8ub, "checksum" / Int16ub, "rest" / Int32ub)
_HDR = struct.Struct("!BBHI")


class Icmpv6(View):
    __slots__ = ("checksum", "code", "rest", "type")
    name: ClassVar[str] = "icmpv6"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("type", 0, 1), ("code", 1, 1), ("checksum", 2, 2), ("rest", 4, 4),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, ICMPV6_HLEN)
        self.type, self.code, self.checksum, self.rest = _HDR.unpack_from(hdr)
        self.malformed = False

    @property
    def header_len(self) -> int:
        return ICMPV6_HLEN

    @property
    def id(self) -> int:
        return self.rest >> 16

    @property
    def seq(self) -> int:
        return self.rest & 0xFFFF

    @property
    def target(self) -> bytes | None:
        if self.type in (ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT, ND_REDIRECT) and len(
                self.buf) >= 24:
            return bytes(self.buf[8:24])
        return None
