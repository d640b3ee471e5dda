"""IEEE 802.2 LLC and SNAP: what follows an 802.3 length field, an 802.11 data header,
or a Linux cooked header of protocol 0x0004.

    l = Llc(body)
    l.dsap, l.ssap          # service access points (0xaa: SNAP, 0x42: spanning tree,
                            # 0xfe: OSI, 0xe0: IPX)
    l.control               # 1 byte (U frames: low bits 11), else 2 bytes (I and S frames,
                            # read little-endian as Wireshark does)
    l.oui, l.pid            # SNAP (dsap = ssap = 0xaa, control 0x03), else None
    l.payload

What follows: with SNAP, an EtherType when the OUI is 0 (RFC 1042) or 0x0000f8
(802.1H), else the (OUI, PID) pair (Cisco's CDP 0x00000c/0x2000 ...); without
SNAP, the DSAP.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import Byte, Int16ub, Int24ub, Struct

from rawlab.decode.view import Buffer, View, as_view

SAP_SNAP = 0xAA
SAP_STP = 0x42
SAP_IP = 0x06
SAP_IPX = 0xE0
SAP_NETBIOS = 0xF0
SAP_OSI = 0xFE
OUI_ENCAP_ETHER = 0x000000
OUI_CISCO = 0x00000C
OUI_BRIDGE_TUNNEL = 0x0000F8
OUI_IEEE_8021 = 0x0080C2
CISCO_PID_CDP = 0x2000
CISCO_PID_VTP = 0x2003
CISCO_PID_DTP = 0x2004
CISCO_PID_PVST = 0x010B
#: OUIs whose PID is an EtherType
ETHERTYPE_OUIS = frozenset((OUI_ENCAP_ETHER, OUI_BRIDGE_TUNNEL))

LLC_HEADER = Struct("dsap" / Byte, "ssap" / Byte, "control" / Byte)
SNAP_HEADER = Struct("oui" / Int24ub, "pid" / Int16ub)

_SNAP = struct.Struct("!I")
_HLE = struct.Struct("<H")


def snap_key(oui: int, pid: int) -> int:
    """The key of the "snap" dispatch table for a non-EtherType (OUI, PID) pair."""
    return oui << 16 | pid


class Llc(View):
    __slots__ = ("control", "dsap", "hlen", "oui", "pid", "ssap")
    name: ClassVar[str] = "llc"

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        n = len(mv)
        self.dsap = mv[0] if n else None
        self.ssap = mv[1] if n > 1 else None
        self.oui: int | None = None
        self.pid: int | None = None
        self.malformed = False
        if n > 2 and mv[2] & 3 == 3:
            self.control: int | None = mv[2]
            hl = 3
        else:
            self.control = _HLE.unpack_from(mv, 2)[0] if n >= 4 else None
            hl = 4
        if self.dsap == SAP_SNAP and self.ssap == SAP_SNAP and self.control == 0x03:
            if n >= 8:
                v = _SNAP.unpack_from(mv, 3)[0] << 8 | mv[7]
                self.oui, self.pid = v >> 16, v & 0xFFFF
            hl = 8
        self.hlen = hl
        self.truncated = n < hl

    @property
    def header_len(self) -> int:
        return self.hlen

    @property
    def next_table(self) -> str:
        if self.oui is None:
            return "llc"
        return "ethertype" if self.oui in ETHERTYPE_OUIS else "snap"

    @property
    def next_key(self) -> int | None:
        if self.oui is not None:
            return self.pid if self.oui in ETHERTYPE_OUIS else snap_key(self.oui, self.pid or 0)
        if self.dsap == SAP_SNAP:
            return None  # SNAP cut short
        return self.dsap

    def fields(self) -> dict[str, Any]:
        d: dict[str, Any] = {"dsap": self.dsap, "ssap": self.ssap, "control": self.control}
        if self.dsap == SAP_SNAP and self.ssap == SAP_SNAP and self.control == 0x03:
            d.update(oui=self.oui, pid=self.pid)
        return d
