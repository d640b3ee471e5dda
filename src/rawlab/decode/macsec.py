"""MACsec (IEEE 802.1AE; EtherType 0x88e5): the SecTAG, and the frame inside when it is
only integrity-protected.

    m = Macsec(body)
    m.tci, m.an              # the 6-bit TCI (V 0x20, ES 0x10, SC 0x08, SCB 0x04, E 0x02,
                             # C 0x01) and the association number: byte 0 is tci << 2 | an
    m.sl, m.pn               # short length (the secure data's length when below 48), packet
                             # number
    m.sci                    # 8-byte secure channel identifier when SC is set, else None
    m.system_identifier, m.port_identifier    # its halves
    m.etype                  # the protected frame's EtherType when E and C are clear
    m.icv                    # the last 16 bytes (integrity check value)
    m.payload                # unencrypted: after etype; encrypted: the secure data (data)
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import Byte, Bytes, If, Int32ub, Struct, this

from rawlab.decode.view import Buffer, View, as_view

ETH_P_MACSEC = 0x88E5
TCI_V = 0x20
TCI_ES = 0x10
TCI_SC = 0x08
TCI_SCB = 0x04
TCI_E = 0x02
TCI_C = 0x01
ICV_LEN = 16

SECTAG = Struct("tci_an" / Byte, "sl" / Byte, "pn" / Int32ub,
                "sci" / If(this.tci_an & TCI_SC << 2, Bytes(8)))
_HDR = struct.Struct("!BBI")
_H = struct.Struct("!H")


class Macsec(View):
    __slots__ = ("an", "hlen", "pn", "sci", "sl", "tci")
    name: ClassVar[str] = "macsec"

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        n = len(mv)
        b = bytes(mv[:6]).ljust(6, b"\0")
        tci_an, self.sl, self.pn = _HDR.unpack(b)
        self.tci, self.an = tci_an >> 2, tci_an & 3
        hl = 6
        self.sci: bytes | None = None
        if self.tci & TCI_SC:
            self.sci = bytes(mv[6:14]) if n >= 14 else None
            hl = 14
        self.hlen = hl
        self.truncated = n < hl + (0 if self.encrypted else 2) + ICV_LEN
        self.malformed = self.sl >= 48 or bool(self.tci & TCI_V)

    @property
    def encrypted(self) -> bool:
        return bool(self.tci & (TCI_E | TCI_C))

    @property
    def system_identifier(self) -> bytes | None:
        return None if self.sci is None else self.sci[:6]

    @property
    def port_identifier(self) -> int | None:
        return None if self.sci is None else _H.unpack_from(self.sci, 6)[0]

    @property
    def etype(self) -> int | None:
        if self.encrypted or len(self.buf) < self.hlen + 2:
            return None
        return _H.unpack_from(self.buf, self.hlen)[0]

    @property
    def _data_end(self) -> int:
        """Where the secure data ends: before the ICV (the short length, when set)."""
        n = len(self.buf)
        if self.sl:
            return min(n, self.hlen + self.sl)
        return max(n - ICV_LEN, self.hlen)

    @property
    def icv(self) -> bytes | None:
        """The ICV's captured bytes: after the short length's data, else the last 16."""
        n = len(self.buf)
        start = self.hlen + self.sl if self.sl else n - ICV_LEN
        if start < self.hlen or start >= n:
            return None
        return bytes(self.buf[start : start + ICV_LEN])

    @property
    def header_len(self) -> int:
        return self.hlen if self.encrypted else self.hlen + 2

    @property
    def payload(self) -> memoryview:
        hl = min(self.header_len, len(self.buf))
        return self.buf[hl : max(self._data_end, hl)]

    @property
    def next_table(self) -> str:
        return "encap" if self.encrypted else "ethertype"

    @property
    def next_key(self) -> int | str | None:
        return "data" if self.encrypted else self.etype

    def fields(self) -> dict[str, Any]:
        d: dict[str, Any] = {"tci": self.tci, "an": self.an, "sl": self.sl, "pn": self.pn}
        if self.sci is not None:
            d.update(system_identifier=self.system_identifier,
                     port_identifier=self.port_identifier)
        d.update(etype=self.etype, icv=self.icv)
        return d
