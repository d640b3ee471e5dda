"""PPPoE (RFC 2516): discovery (EtherType 0x8863) and session (0x8864) stages.

    p = PppoeSession(frame_body)      # or PppoeDiscovery(...)
    p.version, p.type               # 1, 1
    p.code                          # discovery: 0x09 PADI, 0x07 PADO, 0x19 PADR,
                                    # 0x65 PADS, 0xa7 PADT; session: 0
    p.session_id, p.payload_length
    p.tags                          # discovery: tuple[Tlv] (16-bit type and length)
    p.payload                       # session: the PPP frame (protocol field first),
                                    # bounded by payload_length
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import BitsInteger, BitStruct, Byte, Int16ub, Struct

from rawlab.decode.tlv import MALFORMED, TRUNCATED, walk
from rawlab.decode.view import Buffer, View, as_view, pad

ETH_P_PPP_DISC = 0x8863
ETH_P_PPP_SES = 0x8864
PPPOE_HLEN = 6
PADI, PADO, PADR, PADS, PADT = 0x09, 0x07, 0x19, 0x65, 0xA7
TAG_END_OF_LIST = 0x0000
TAG_SERVICE_NAME = 0x0101
TAG_AC_NAME = 0x0102
TAG_HOST_UNIQ = 0x0103
TAG_AC_COOKIE = 0x0104

PPPOE_HEADER = Struct(
    "vt" / BitStruct("version" / BitsInteger(4), "type" / BitsInteger(4)),
    "code" / Byte, "session_id" / Int16ub, "payload_length" / Int16ub,
)
_HDR = struct.Struct("!BBHH")
_TL = struct.Struct("!HH")


def _tag_head(buf: memoryview, pos: int) -> tuple[int, int]:
    return _TL.unpack_from(buf, pos)  # type: ignore[return-value]


class _Pppoe(View):
    __slots__ = ("code", "payload_length", "session_id", "type", "version")
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("version", 0, 1), ("type", 0, 1), ("code", 1, 1), ("session_id", 2, 2),
        ("payload_length", 4, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, PPPOE_HLEN)
        vt, self.code, self.session_id, self.payload_length = _HDR.unpack_from(hdr)
        self.version, self.type = vt >> 4, vt & 15
        self.truncated = trunc or len(mv) < PPPOE_HLEN + self.payload_length
        self.malformed = False

    @property
    def header_len(self) -> int:
        return PPPOE_HLEN

    @property
    def payload(self) -> memoryview:
        return self.buf[PPPOE_HLEN : PPPOE_HLEN + self.payload_length]


class PppoeSession(_Pppoe):
    __slots__ = ()
    name: ClassVar[str] = "pppoes"
    next_table: ClassVar[str] = "encap"
    next_key: ClassVar[str] = "ppp"


class PppoeDiscovery(_Pppoe):
    __slots__ = ("tags",)
    name: ClassVar[str] = "pppoed"

    def __init__(self, buf: Buffer) -> None:
        super().__init__(buf)
        items, trouble = walk(self.buf, PPPOE_HLEN, PPPOE_HLEN + self.payload_length,
                              _tag_head, 4)
        self.tags = tuple(items)
        self.truncated = self.truncated or trouble == TRUNCATED
        self.malformed = trouble == MALFORMED

    @property
    def header_len(self) -> int:
        return min(len(self.buf), PPPOE_HLEN + self.payload_length)

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        d["tags"] = [{"type": t.type, "length": _TL.unpack_from(self.buf, t.offset)[1],
                      "value": t.value} for t in self.tags]
        return d
