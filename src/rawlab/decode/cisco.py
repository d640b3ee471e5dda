"""Two small vendor headers that sit between an EtherType and the frame it carries.

    m = CiscoMetadata(body)       # EtherType 0x8909 (also GRE protocol 0x8909)
    m.type                                    # the EtherType that follows (first, as
                                              # Wireshark 4.0 reads it)
    m.version, m.length, m.options, m.sgt     # Cisco MetaData: SGT tag option

    a = Avsp(body)                # Arista Vendor Specific Protocol, EtherType 0xd28b
    a.sub_type, a.ver             # 1; 0x0010/0x0110 (64-bit timestamp, TAI/UTC) or
                                  # 0x0020/0x0120 (48-bit)
    a.ts_sec, a.ts_ns             # the timestamp (None for an unknown version)
    a.etype                       # the EtherType that follows
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import Byte, Int16ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

ETH_P_CMD = 0x8909
ETH_P_AVSP = 0xD28B
CMD_HLEN = 8
AVSP_TS64 = 0x0010
AVSP_TS48 = 0x0020

CMD_HEADER = Struct("type" / Int16ub, "version" / Byte, "length" / Byte, "options" / Int16ub,
                    "sgt" / Int16ub)
AVSP_HEADER = Struct("sub_type" / Int16ub, "ver" / Int16ub)
_CMD = struct.Struct("!HBBHH")
_AVSP = struct.Struct("!HH")
_TS64 = struct.Struct("!IIH")
_TS48 = struct.Struct("!HIH")
#: timestamp versions (TAI and UTC), as Wireshark knows them: another is not decoded
_AVSP_TS = {AVSP_TS64: _TS64, 0x0110: _TS64, AVSP_TS48: _TS48, 0x0120: _TS48}


class CiscoMetadata(View):
    __slots__ = ("length", "options", "sgt", "type", "version")
    name: ClassVar[str] = "cmd"
    next_table: ClassVar[str] = "ethertype"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("type", 0, 2), ("version", 2, 1), ("length", 3, 1), ("options", 4, 2), ("sgt", 6, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, CMD_HLEN)
        self.type, self.version, self.length, self.options, self.sgt = _CMD.unpack_from(hdr)
        self.malformed = False

    @property
    def header_len(self) -> int:
        return CMD_HLEN

    @property
    def next_key(self) -> int:
        return self.type


class Avsp(View):
    __slots__ = ("etype", "hlen", "sub_type", "ts_ns", "ts_sec", "ver")
    name: ClassVar[str] = "avsp"
    next_table: ClassVar[str] = "ethertype"

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, 4)
        self.sub_type, self.ver = _AVSP.unpack_from(hdr)
        st = _AVSP_TS.get(self.ver)
        self.ts_sec = self.ts_ns = self.etype = None
        self.malformed = st is None
        self.hlen = 4 + (st.size if st is not None else 0)
        if st is not None and len(mv) >= self.hlen:
            self.ts_sec, self.ts_ns, self.etype = st.unpack_from(mv, 4)
        self.truncated = trunc or len(mv) < self.hlen

    @property
    def header_len(self) -> int:
        return self.hlen

    @property
    def next_key(self) -> int | None:
        return self.etype

    def fields(self) -> dict[str, Any]:
        return {"sub_type": self.sub_type, "ver": self.ver, "ts_sec": self.ts_sec,
                "ts_ns": self.ts_ns, "etype": self.etype}
