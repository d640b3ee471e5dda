"""BSD loopback headers: link types NULL (0) and LOOP (108).

    n = Null(record)          # NULL: the address family in the capturing host's byte order
    n = Loop(record)          # LOOP (OpenBSD): the same 4 bytes, network byte order
    n.family                  # BSD AF_* value (2 IPv4; 24, 28, 30 IPv6), or an EtherType
    n.next_table, n.next_key  # what follows: ("ethertype", the family's EtherType), or
                              # ("encap", "ppp") for PPP; next_key None: unknown family
    n.payload                 # after the 4-byte header

NULL's byte order is the capturing machine's: as Wireshark (``packet-null.c``),
the field is read little-endian and byte-swapped when its upper 16 bits are set.
A value above 1500 is an EtherType (some systems wrote those). A NULL record that
starts ``ff 03`` is PPP in HDLC-like framing (Wireshark's check): ``ppp`` is True
and what follows is PPP from byte 0.
"""

from __future__ import annotations

import struct
from typing import ClassVar

from construct import Int32ub, Int32ul, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

NULL_HLEN = 4
BSD_AF_INET = 2
BSD_AF_ISO = 7
BSD_AF_APPLETALK = 16
BSD_AF_IPX = 23
BSD_AF_INET6_BSD = 24
BSD_AF_INET6_FREEBSD = 28
BSD_AF_INET6_DARWIN = 30
#: family -> the EtherType of what follows
FAMILY_ETHERTYPE = {BSD_AF_INET: 0x0800, BSD_AF_INET6_BSD: 0x86DD, BSD_AF_INET6_FREEBSD: 0x86DD,
                    BSD_AF_INET6_DARWIN: 0x86DD, BSD_AF_IPX: 0x8137, BSD_AF_APPLETALK: 0x809B}
ETHERTYPE_MIN = 1501

NULL_HEADER = Struct("family" / Int32ul)
LOOP_HEADER = Struct("family" / Int32ub)

_LE = struct.Struct("<I")
_BE = struct.Struct("!I")


class Null(View):
    __slots__ = ("family", "ppp")
    name: ClassVar[str] = "null"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (("family", 0, 4),)

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, NULL_HLEN)
        self.ppp = hdr[0] == 0xFF and hdr[1] == 0x03
        self.family = self._family(hdr)
        self.malformed = False

    @staticmethod
    def _family(hdr: memoryview | bytes) -> int:
        v = _LE.unpack_from(hdr)[0]
        return _BE.unpack_from(hdr)[0] if v & 0xFFFF0000 else v

    @property
    def header_len(self) -> int:
        return 0 if self.ppp else NULL_HLEN

    @property
    def next_table(self) -> str:
        return "encap" if self.ppp else "ethertype"

    @property
    def next_key(self) -> int | str | None:
        if self.ppp:
            return "ppp"
        f = self.family
        return f if f >= ETHERTYPE_MIN else FAMILY_ETHERTYPE.get(f)


class Loop(Null):
    """OpenBSD's loopback: the family in network byte order."""

    __slots__ = ()

    @staticmethod
    def _family(hdr: memoryview | bytes) -> int:
        return _BE.unpack_from(hdr)[0]
