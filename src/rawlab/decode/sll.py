"""Linux "cooked" capture headers: LINUX_SLL (link type 113) and LINUX_SLL2 (276).

    s = Sll(record)      # 16 bytes: pkttype, hatype, halen, addr[8], protocol
    s2 = Sll2(record)    # 20 bytes: protocol, reserved, ifindex, hatype, pkttype, halen, addr[8]
    s.protocol           # an EtherType, or the netlink family when hatype == ARPHRD_NETLINK
    s.address            # addr[:halen] (at most 8 bytes)

The NETLINK link type (253) starts with the same 16-byte header as LINUX_SLL,
with hatype 824 and the netlink family in ``protocol``.
"""

from __future__ import annotations

import struct
from typing import ClassVar

from construct import Bytes, Int8ub, Int16ub, Int32ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

# protocol values that are not EtherTypes
LINUX_SLL_P_802_3 = 0x0001
LINUX_SLL_P_802_2 = 0x0004

SLL_HLEN = 16
SLL2_HLEN = 20

SLL_HEADER = Struct(
    "pkttype" / Int16ub, "hatype" / Int16ub, "halen" / Int16ub, "addr" / Bytes(8),
    "protocol" / Int16ub,
)
SLL2_HEADER = Struct(
    "protocol" / Int16ub, "reserved" / Int16ub, "ifindex" / Int32ub, "hatype" / Int16ub,
    "pkttype" / Int8ub, "halen" / Int8ub, "addr" / Bytes(8),
)

_SLL = struct.Struct("!HHH8sH")
_SLL2 = struct.Struct("!HHIHBB8s")


class Sll(View):
    __slots__ = ("addr", "halen", "hatype", "pkttype", "protocol")
    name: ClassVar[str] = "sll"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("pkttype", 0, 2), ("hatype", 2, 2), ("halen", 4, 2), ("addr", 6, 8),
        ("protocol", 14, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, SLL_HLEN)
        self.pkttype, self.hatype, self.halen, self.addr, self.protocol = _SLL.unpack_from(hdr)
        self.malformed = self.halen > 8

    @property
    def header_len(self) -> int:
        return SLL_HLEN

    @property
    def address(self) -> bytes:
        return self.addr[: min(self.halen, 8)]


class Sll2(View):
    __slots__ = ("addr", "halen", "hatype", "ifindex", "pkttype", "protocol", "reserved")
    name: ClassVar[str] = "sll"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("protocol", 0, 2), ("reserved", 2, 2), ("ifindex", 4, 4), ("hatype", 8, 2),
        ("pkttype", 10, 1), ("halen", 11, 1), ("addr", 12, 8),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, SLL2_HLEN)
        (self.protocol, self.reserved, self.ifindex, self.hatype, self.pkttype, self.halen,
         self.addr) = _SLL2.unpack_from(hdr)
        self.malformed = self.halen > 8

    @property
    def header_len(self) -> int:
        return SLL2_HLEN

    @property
    def address(self) -> bytes:
        return self.addr[: min(self.halen, 8)]
