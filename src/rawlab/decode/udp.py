"""UDP (RFC 768).

    u = Udp(datagram)
    u.sport, u.dport, u.length, u.checksum      # ints
    u.payload                                    # bounded by `length` when it is sane

A length of 0 is a GSO/jumbogram artefact: the payload runs to the end of the
capture. A length below 8 is malformed.
"""

from __future__ import annotations

import struct
from typing import ClassVar

from construct import Int16ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

UDP_HLEN = 8
UDP_HEADER = Struct("sport" / Int16ub, "dport" / Int16ub, "length" / Int16ub,
                    "checksum" / Int16ub)
_HDR = struct.Struct("!HHHH")


class Udp(View):
    __slots__ = ("checksum", "dport", "length", "sport")
    name: ClassVar[str] = "udp"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("sport", 0, 2), ("dport", 2, 2), ("length", 4, 2), ("checksum", 6, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, UDP_HLEN)
        self.sport, self.dport, self.length, self.checksum = _HDR.unpack_from(hdr)
        ln = self.length
        self.malformed = 0 < ln < UDP_HLEN
        self.truncated = trunc or len(mv) < ln

    @property
    def header_len(self) -> int:
        return UDP_HLEN

    @property
    def end(self) -> int:
        ln, n = self.length, len(self.buf)
        return n if ln < UDP_HLEN else min(ln, n)

    @property
    def payload(self) -> memoryview:
        return self.buf[min(UDP_HLEN, len(self.buf)) : max(self.end, UDP_HLEN)]
