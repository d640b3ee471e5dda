"""ERSPAN, Cisco's mirrored traffic over GRE: type I (GRE 0x88be without a sequence
number: no header), type II (0x88be: 8 bytes), type III (0x22eb: 12 bytes, plus an
8-byte platform sub-header when ``o`` is set).

    e = Erspan(body)          # type II; Erspan1(body) type I; Erspan3(body) type III
    e.version                 # 1 (type II), 2 (type III); None for type I
    e.vlan, e.cos, e.truncated_bit, e.spanid     # type II and III
    e.encap                   # type II's encapsulation type ("en"); e.bso: type III's
                              # bad/short/oversized frame flags
    e.index                   # type II
    e.timestamp, e.sgt, e.p, e.ft, e.hw, e.direction, e.gra, e.o     # type III
    e.platform                # type III's 8-byte platform sub-header (when o), else None
    e.payload                 # the mirrored frame (Ethernet; type III with ft != 0: data)
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import BitsInteger, BitStruct

from rawlab.decode.view import Buffer, View, as_view, pad

ERSPAN_II_HLEN = 8
ERSPAN_III_HLEN = 12

ERSPAN_II_HEADER = BitStruct(
    "version" / BitsInteger(4), "vlan" / BitsInteger(12), "cos" / BitsInteger(3),
    "encap" / BitsInteger(2), "truncated" / BitsInteger(1), "spanid" / BitsInteger(10),
    "reserved" / BitsInteger(12), "index" / BitsInteger(20),
)
ERSPAN_III_HEADER = BitStruct(
    "version" / BitsInteger(4), "vlan" / BitsInteger(12), "cos" / BitsInteger(3),
    "bso" / BitsInteger(2), "truncated" / BitsInteger(1), "spanid" / BitsInteger(10),
    "timestamp" / BitsInteger(32), "sgt" / BitsInteger(16), "p" / BitsInteger(1),
    "ft" / BitsInteger(5), "hw" / BitsInteger(6), "direction" / BitsInteger(1),
    "gra" / BitsInteger(2), "o" / BitsInteger(1),
)
_II = struct.Struct("!HHI")
_III = struct.Struct("!HHIHH")


class Erspan(View):
    """Type II."""

    __slots__ = ("cos", "encap", "index", "spanid", "truncated_bit", "version", "vlan")
    name: ClassVar[str] = "erspan"
    next_table: ClassVar[str] = "encap"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("version", 0, 1), ("vlan", 0, 2), ("cos", 2, 1), ("encap", 2, 1),
        ("truncated_bit", 2, 1), ("spanid", 2, 2), ("index", 4, 4),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, ERSPAN_II_HLEN)
        a, b, c = _II.unpack_from(hdr)
        self.version, self.vlan = a >> 12, a & 0xFFF
        self.cos, self.encap, self.truncated_bit, self.spanid = (
            b >> 13, b >> 11 & 3, b >> 10 & 1, b & 0x3FF)
        self.index = c & 0xFFFFF
        self.malformed = False

    @property
    def header_len(self) -> int:
        return ERSPAN_II_HLEN

    @property
    def next_key(self) -> str:
        return "eth"


class Erspan1(View):
    """Type I: no header, the mirrored Ethernet frame at once."""

    __slots__ = ()
    name: ClassVar[str] = "erspan"
    next_table: ClassVar[str] = "encap"
    next_key: ClassVar[str] = "eth"

    def __init__(self, buf: Buffer) -> None:
        self.buf = as_view(buf)
        self.truncated = self.malformed = False

    def fields(self) -> dict[str, Any]:
        return {"version": None}


class Erspan3(View):
    __slots__ = ("bso", "cos", "direction", "ft", "gra", "hw", "o", "p", "platform", "sgt",
                 "spanid", "timestamp", "truncated_bit", "version", "vlan")
    name: ClassVar[str] = "erspan"
    next_table: ClassVar[str] = "encap"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("version", 0, 1), ("vlan", 0, 2), ("cos", 2, 1), ("bso", 2, 1),
        ("truncated_bit", 2, 1), ("spanid", 2, 2), ("timestamp", 4, 4), ("sgt", 8, 2),
        ("p", 10, 1), ("ft", 10, 1), ("hw", 10, 2), ("direction", 11, 1), ("gra", 11, 1),
        ("o", 11, 1),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, ERSPAN_III_HLEN)
        a, b, self.timestamp, self.sgt, f = _III.unpack_from(hdr)
        self.version, self.vlan = a >> 12, a & 0xFFF
        self.cos, self.bso, self.truncated_bit, self.spanid = (
            b >> 13, b >> 11 & 3, b >> 10 & 1, b & 0x3FF)
        self.p, self.ft, self.hw = f >> 15, f >> 10 & 0x1F, f >> 4 & 0x3F
        self.direction, self.gra, self.o = f >> 3 & 1, f >> 1 & 3, f & 1
        self.platform: bytes | None = None
        if self.o:
            self.platform = bytes(mv[12:20]) if len(mv) >= 20 else None
            trunc = trunc or len(mv) < 20
        self.truncated = trunc
        self.malformed = False

    @property
    def header_len(self) -> int:
        return ERSPAN_III_HLEN + (8 if self.o else 0)

    @property
    def next_key(self) -> str:
        return "eth" if self.ft == 0 else "data"

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        if self.platform is not None:
            d["platform"] = self.platform
        return d
