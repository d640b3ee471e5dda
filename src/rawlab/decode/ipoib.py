"""IP over InfiniBand records (link type IPOIB, 242), as Linux captures them.

    b = Ipoib(record)
    b.grh              # the first 20 bytes: Linux's pseudo global route header (raw)
    b.daddr_qpn        # destination queue pair number (24 bits of the 20-byte address)
    b.dgid             # destination GID (16 bytes, an IPv6-form address)
    b.type, b.reserved # RFC 4391 §6's 4-byte encapsulation header: an EtherType, 0
    b.payload          # IPv4, IPv6 or ARP

Layout (44 bytes, as Wireshark reads ``WTAP_ENCAP_IP_OVER_IB_PCAP``): 20 bytes of
pseudo GRH, the 20-byte destination hardware address (flags + QPN, GID), then type
and reserved.
"""

from __future__ import annotations

import struct
from typing import ClassVar

from construct import Bytes, Int16ub, Int32ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

IPOIB_HLEN = 44
IPOIB_HEADER = Struct("grh" / Bytes(20), "daddr" / Int32ub, "dgid" / Bytes(16),
                      "type" / Int16ub, "reserved" / Int16ub)
_HDR = struct.Struct("!20sI16sHH")


class Ipoib(View):
    __slots__ = ("daddr_qpn", "dgid", "grh", "reserved", "type")
    name: ClassVar[str] = "ipoib"
    next_table: ClassVar[str] = "ethertype"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("grh", 0, 20), ("daddr_qpn", 21, 3), ("dgid", 24, 16), ("type", 40, 2),
        ("reserved", 42, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, IPOIB_HLEN)
        self.grh, daddr, self.dgid, self.type, self.reserved = _HDR.unpack_from(hdr)
        self.daddr_qpn = daddr & 0xFFFFFF
        self.malformed = False

    @property
    def header_len(self) -> int:
        return IPOIB_HLEN

    @property
    def next_key(self) -> int:
        return self.type
