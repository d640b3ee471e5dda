"""IP over InfiniBand records (link type IPOIB, 242), as Linux captures them.

    b = Ipoib(record)
    b.grh_present          # the first 40 bytes are a global route header (IP version set)
    b.daddr_qpn            # no GRH: destination queue pair number (24 bits at offset 21)
    b.ipver, b.tclass, b.flowlabel, b.sqpn, b.sgid     # with a GRH (else None)
    b.dgid                 # destination GID (16 bytes at offset 24, either way)
    b.type, b.reserved     # RFC 4391 §6's 4-byte encapsulation header: an EtherType, 0
    b.payload              # IPv4, IPv6 or ARP

Layout (44 bytes, as Wireshark reads ``WTAP_ENCAP_IP_OVER_IB_PCAP``): 40 bytes of
addresses, then type and reserved. Those 40 bytes are a global route header (IP
version, traffic class, flow label; source QPN at 5, source GID at 8, destination
GID at 24) when its IP version nibble is set, else 20 unused bytes and the 20-byte
destination hardware address (flags + QPN, GID).
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import Bytes, Int16ub, Int32ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

IPOIB_HLEN = 44
IPOIB_HEADER = Struct("grh" / Bytes(20), "daddr" / Int32ub, "dgid" / Bytes(16),
                      "type" / Int16ub, "reserved" / Int16ub)
GRH_HEADER = Struct("vtf" / Int32ub, "sqpn" / Int32ub, "sgid" / Bytes(16), "dgid" / Bytes(16))
_HDR = struct.Struct("!II16s16sHH")
_DADDR = struct.Struct("!I")


class Ipoib(View):
    __slots__ = ("daddr_qpn", "dgid", "flowlabel", "grh_present", "ipver", "reserved", "sgid",
                 "sqpn", "tclass", "type")
    name: ClassVar[str] = "ipoib"
    next_table: ClassVar[str] = "ethertype"

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, IPOIB_HLEN)
        vtf, sq, self.sgid, self.dgid, self.type, self.reserved = _HDR.unpack_from(hdr)
        daddr = _DADDR.unpack_from(hdr, 20)[0]
        self.ipver = vtf >> 28
        self.grh_present = self.ipver != 0
        self.tclass, self.flowlabel = vtf >> 20 & 0xFF, vtf & 0xFFFFF
        self.sqpn = sq & 0xFFFFFF
        self.daddr_qpn = daddr & 0xFFFFFF
        self.malformed = False

    @property
    def header_len(self) -> int:
        return IPOIB_HLEN

    @property
    def next_key(self) -> int:
        return self.type

    def fields(self) -> dict[str, Any]:
        n = len(self.buf)
        if self.grh_present:
            d: dict[str, Any] = {"ipver": self.ipver, "tclass": self.tclass,
                                 "flowlabel": self.flowlabel,
                                 "sqpn": self.sqpn if n >= 8 else None,
                                 "sgid": self.sgid if n >= 24 else None}
        else:
            d = {"daddr_qpn": self.daddr_qpn if n >= 24 else None}
        d.update(dgid=self.dgid if n >= 40 else None, type=self.type if n >= 42 else None,
                 reserved=self.reserved if n >= 44 else None)
        return d
