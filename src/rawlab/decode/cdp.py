"""Cisco Discovery Protocol (after SNAP 0x00000c/0x2000, or Cisco HDLC 0x2000).

    c = Cdp(message)
    c.version, c.ttl, c.checksum    # 1-byte version, hold time in seconds, checksum
    c.tlvs                          # tuple[Tlv]: 16-bit type, 16-bit length (header
                                    # included), value bytes
    c.value(CDP_DEVICE_ID)          # the first TLV of a type, or None
    c.device_id, c.port_id, c.platform, c.software_version   # bytes or None
    c.native_vlan, c.duplex         # ints or None
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import Byte, GreedyRange, Int16ub, Struct

from rawlab.decode.tlv import MALFORMED, TRUNCATED, walk
from rawlab.decode.view import Buffer, View, as_view, pad

CDP_HLEN = 4
CDP_DEVICE_ID = 0x0001
CDP_ADDRESSES = 0x0002
CDP_PORT_ID = 0x0003
CDP_CAPABILITIES = 0x0004
CDP_SOFTWARE_VERSION = 0x0005
CDP_PLATFORM = 0x0006
CDP_VTP_DOMAIN = 0x0009
CDP_NATIVE_VLAN = 0x000A
CDP_DUPLEX = 0x000B
CDP_MGMT_ADDRESS = 0x0016

CDP_HEADER = Struct("version" / Byte, "ttl" / Byte, "checksum" / Int16ub,
                    "tlvs" / GreedyRange(Struct("type" / Int16ub, "length" / Int16ub)))
_HDR = struct.Struct("!BBH")
_TL = struct.Struct("!HH")


def _head(buf: memoryview, pos: int) -> tuple[int, int]:
    return _TL.unpack_from(buf, pos)  # type: ignore[return-value]


class Cdp(View):
    __slots__ = ("checksum", "tlvs", "ttl", "version")
    name: ClassVar[str] = "cdp"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("version", 0, 1), ("ttl", 1, 1), ("checksum", 2, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, CDP_HLEN)
        self.version, self.ttl, self.checksum = _HDR.unpack_from(hdr)
        items, trouble = walk(mv, CDP_HLEN, len(mv), _head, 4, inclusive=True)
        self.tlvs = tuple(items)
        self.truncated = trunc or trouble == TRUNCATED
        self.malformed = trouble == MALFORMED

    @property
    def header_len(self) -> int:
        return len(self.buf)

    def value(self, typ: int) -> bytes | None:
        for t in self.tlvs:
            if t.type == typ:
                return t.value
        return None

    @property
    def device_id(self) -> bytes | None:
        return self.value(CDP_DEVICE_ID)

    @property
    def port_id(self) -> bytes | None:
        return self.value(CDP_PORT_ID)

    @property
    def platform(self) -> bytes | None:
        return self.value(CDP_PLATFORM)

    @property
    def software_version(self) -> bytes | None:
        return self.value(CDP_SOFTWARE_VERSION)

    @property
    def native_vlan(self) -> int | None:
        v = self.value(CDP_NATIVE_VLAN)
        return v[0] << 8 | v[1] if v is not None and len(v) >= 2 else None

    @property
    def duplex(self) -> int | None:
        v = self.value(CDP_DUPLEX)
        return v[0] if v else None

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        d["tlvs"] = [{"type": t.type, "length": _TL.unpack_from(self.buf, t.offset)[1],
                      "value": t.value} for t in self.tlvs]
        for k in ("device_id", "port_id", "platform", "software_version", "native_vlan",
                  "duplex"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        return d
