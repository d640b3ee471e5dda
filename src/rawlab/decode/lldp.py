"""Link Layer Discovery Protocol (IEEE 802.1AB; EtherType 0x88cc).

    l = Lldp(lldpdu)
    l.tlvs                       # tuple[Tlv]: 7-bit type, 9-bit length, value bytes
    l.chassis_subtype, l.chassis_id    # TLV 1 (4: MAC address, 5: network address ...)
    l.port_subtype, l.port_id          # TLV 2
    l.ttl                              # TLV 3, seconds
    l.port_desc, l.system_name, l.system_desc    # TLVs 4, 5, 6 (bytes)
    l.system_cap, l.enabled_cap        # TLV 7
    l.org                              # TLV 127: tuple of (OUI, subtype, info bytes)

The walk stops after the End TLV (type 0); bytes after it are padding. An LLDPDU that
does not start with Chassis ID, Port ID and TTL is malformed, and (as in Wireshark)
nothing from the first out-of-place TLV on is read.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import BitsInteger, BitStruct, GreedyRange, Struct

from rawlab.decode.tlv import MALFORMED, TRUNCATED, walk
from rawlab.decode.view import Buffer, View, as_view

LLDP_END = 0
LLDP_CHASSIS_ID = 1
LLDP_PORT_ID = 2
LLDP_TTL = 3
LLDP_PORT_DESC = 4
LLDP_SYSTEM_NAME = 5
LLDP_SYSTEM_DESC = 6
LLDP_SYSTEM_CAP = 7
LLDP_MGMT_ADDR = 8
LLDP_ORG = 127
#: the TLVs every LLDPDU starts with, in this order (IEEE 802.1AB §8.2)
MANDATORY = (LLDP_CHASSIS_ID, LLDP_PORT_ID, LLDP_TTL)

LLDP_TLV = BitStruct("type" / BitsInteger(7), "length" / BitsInteger(9))
LLDP_PDU = GreedyRange(Struct("tlv" / LLDP_TLV))
_H = struct.Struct("!H")


def _head(buf: memoryview, pos: int) -> tuple[int, int]:
    v = buf[pos] << 8 | buf[pos + 1]
    return v >> 9, v & 0x1FF


class Lldp(View):
    __slots__ = ("end", "tlvs")
    name: ClassVar[str] = "lldp"

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        items, trouble = walk(mv, 0, len(mv), _head, 2)
        for i, t in enumerate(items):
            if i < len(MANDATORY) and t.type != MANDATORY[i]:
                items = items[:i]  # as Wireshark: a missing mandatory TLV ends the LLDPDU
                trouble = MALFORMED
                break
            if t.type == LLDP_END:
                items = items[: i + 1]
                trouble = ""
                break
        self.tlvs = tuple(items)
        self.end = items[-1].offset + 2 + len(items[-1].value) if items else 0
        self.truncated = trouble == TRUNCATED or (not items and trouble != MALFORMED)
        self.malformed = trouble == MALFORMED

    @property
    def header_len(self) -> int:
        return self.end

    def value(self, typ: int) -> bytes | None:
        for t in self.tlvs:
            if t.type == typ:
                return t.value
        return None

    def _sub(self, typ: int) -> tuple[int | None, bytes | None]:
        v = self.value(typ)
        return (v[0], v[1:]) if v else (None, None)

    @property
    def chassis_subtype(self) -> int | None:
        return self._sub(LLDP_CHASSIS_ID)[0]

    @property
    def chassis_id(self) -> bytes | None:
        return self._sub(LLDP_CHASSIS_ID)[1]

    @property
    def port_subtype(self) -> int | None:
        return self._sub(LLDP_PORT_ID)[0]

    @property
    def port_id(self) -> bytes | None:
        return self._sub(LLDP_PORT_ID)[1]

    @property
    def ttl(self) -> int | None:
        v = self.value(LLDP_TTL)
        return _H.unpack_from(v)[0] if v is not None and len(v) >= 2 else None

    @property
    def port_desc(self) -> bytes | None:
        return self.value(LLDP_PORT_DESC)

    @property
    def system_name(self) -> bytes | None:
        return self.value(LLDP_SYSTEM_NAME)

    @property
    def system_desc(self) -> bytes | None:
        return self.value(LLDP_SYSTEM_DESC)

    @property
    def system_cap(self) -> int | None:
        v = self.value(LLDP_SYSTEM_CAP)
        return _H.unpack_from(v)[0] if v is not None and len(v) >= 2 else None

    @property
    def enabled_cap(self) -> int | None:
        v = self.value(LLDP_SYSTEM_CAP)
        return _H.unpack_from(v, 2)[0] if v is not None and len(v) >= 4 else None

    @property
    def org(self) -> tuple[tuple[int, int, bytes], ...]:
        return tuple((t.value[0] << 16 | t.value[1] << 8 | t.value[2], t.value[3], t.value[4:])
                     for t in self.tlvs if t.type == LLDP_ORG and len(t.value) >= 4)

    def fields(self) -> dict[str, Any]:
        d: dict[str, Any] = {"tlvs": [{"type": t.type, "length": _head(self.buf, t.offset)[1],
                                       "value": t.value} for t in self.tlvs]}
        for k in ("chassis_subtype", "chassis_id", "port_subtype", "port_id", "ttl",
                  "port_desc", "system_name", "system_desc", "system_cap", "enabled_cap"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        d["org"] = [{"oui": o, "subtype": s, "info": i} for o, s, i in self.org]
        return d
