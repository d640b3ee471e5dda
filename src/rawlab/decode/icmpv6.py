"""ICMPv6 (RFC 4443) with the neighbour discovery target (RFC 4861).

    m = Icmpv6(message)
    m.type, m.code, m.checksum, m.rest      # ints; `rest` = bytes 4..8 as an int
    m.id, m.seq                             # echo request/reply (128/129)
    m.target                                # NS/NA/redirect target address (16 bytes) or None
    m.payload                               # after the 8-byte header
"""

from __future__ import annotations

from typing import ClassVar

from rawlab.decode.icmp import ICMP_HEADER, IcmpBase

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

ICMPV6_HEADER = ICMP_HEADER  # the same 8 bytes (RFC 4443 §2.1)


class Icmpv6(IcmpBase):
    __slots__ = ()
    name: ClassVar[str] = "icmpv6"

    @property
    def target(self) -> bytes | None:
        if self.type in (ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT, ND_REDIRECT) and len(
                self.buf) >= 24:
            return bytes(self.buf[8:24])
        return None
