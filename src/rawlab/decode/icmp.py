"""ICMP for IPv4 (RFC 792).

    m = Icmp(message)
    m.type, m.code, m.checksum, m.rest      # `rest` is the 4-byte rest-of-header as an int
    m.id, m.seq                             # its two halves (meaningful for echo/timestamp)
    m.payload                               # after the 8-byte header (the original
                                            # datagram for error messages)
"""

from __future__ import annotations

import struct
from typing import ClassVar

from construct import Int8ub, Int16ub, Int32ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

ICMP_HLEN = 8
ICMP_ECHOREPLY = 0
ICMP_DEST_UNREACH = 3
ICMP_SOURCE_QUENCH = 4
ICMP_REDIRECT = 5
ICMP_ECHO = 8
ICMP_TIME_EXCEEDED = 11
ICMP_PARAMETERPROB = 12
ICMP_TIMESTAMP = 13
ICMP_TIMESTAMPREPLY = 14

ICMP_HEADER = Struct("type" / Int8ub, "code" / Int8ub, "checksum" / Int16ub, "rest" / Int32ub)
_HDR = struct.Struct("!BBHI")


class IcmpBase(View):
    """The 8-byte header ICMP and ICMPv6 share: type, code, checksum, 4 more bytes."""

    __slots__ = ("checksum", "code", "rest", "type")
    name: ClassVar[str] = "icmp"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("type", 0, 1), ("code", 1, 1), ("checksum", 2, 2), ("rest", 4, 4),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, ICMP_HLEN)
        self.type, self.code, self.checksum, self.rest = _HDR.unpack_from(hdr)
        self.malformed = False

    @property
    def header_len(self) -> int:
        return ICMP_HLEN

    @property
    def id(self) -> int:
        return self.rest >> 16

    @property
    def seq(self) -> int:
        return self.rest & 0xFFFF


class Icmp(IcmpBase):
    __slots__ = ()
    name: ClassVar[str] = "icmp"
