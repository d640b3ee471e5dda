"""LWAPP (RFC 5412; UDP 12222): Cisco's lightweight access points carry 802.11 frames
to their controller. (Its control messages, UDP 12223, are not decoded.)

    w = Lwapp(datagram)
    w.version, w.slot_id, w.flags   # the first byte: version (2 bits), radio id (3 bits),
                                    # C (0x04: control message), F (0x02), L (0x01)
    w.fragment_id, w.length         # fragment id, payload length
    w.rssi, w.snr                   # status/WLANs: signal and noise of the received frame
    w.payload                       # a data message: the 802.11 frame (FCS excluded)
"""

from __future__ import annotations

import struct
from typing import ClassVar

from construct import Byte, Int16ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

LWAPP_DATA_PORT = 12222
LWAPP_CONTROL_PORT = 12223
LWAPP_HLEN = 6
LWAPP_FLAG_CONTROL = 0x04

LWAPP_HEADER = Struct("flags" / Byte, "fragment_id" / Byte, "length" / Int16ub, "rssi" / Byte,
                      "snr" / Byte)
_HDR = struct.Struct("!BBHBB")


class Lwapp(View):
    __slots__ = ("flags", "fragment_id", "length", "rssi", "slot_id", "snr", "version")
    name: ClassVar[str] = "lwapp"
    next_table: ClassVar[str] = "encap"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("version", 0, 1), ("slot_id", 0, 1), ("flags", 0, 1), ("fragment_id", 1, 1),
        ("length", 2, 2), ("rssi", 4, 1), ("snr", 5, 1),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, LWAPP_HLEN)
        b0, self.fragment_id, self.length, self.rssi, self.snr = _HDR.unpack_from(hdr)
        self.version, self.slot_id, self.flags = b0 >> 6, b0 >> 3 & 7, b0 & 7
        self.truncated = trunc or len(mv) < LWAPP_HLEN + self.length
        self.malformed = False

    @property
    def header_len(self) -> int:
        return LWAPP_HLEN

    @property
    def payload(self) -> memoryview:
        return self.buf[LWAPP_HLEN : LWAPP_HLEN + self.length]

    @property
    def next_key(self) -> str:
        return "data" if self.flags & LWAPP_FLAG_CONTROL else "wlan"
