"""Cisco FabricPath (EtherType 0x8903 in the outer Ethernet header): the forwarding tag,
then the customer's Ethernet frame.

    f = Fabricpath(body)       # what follows the outer header's 0x8903
    f.ftag, f.ttl              # forwarding tree (10 bits), hop count (6 bits)
    f.payload                  # the inner Ethernet frame

The outer destination and source are hierarchical MACs (switch id, sub-switch id,
port): the Ethernet layer before this one holds them as addresses.
"""

from __future__ import annotations

import struct
from typing import ClassVar

from construct import BitsInteger, BitStruct

from rawlab.decode.view import Buffer, View, as_view, pad

ETH_P_FABRICPATH = 0x8903
FABRICPATH_TAG = BitStruct("ftag" / BitsInteger(10), "ttl" / BitsInteger(6))
_H = struct.Struct("!H")


class Fabricpath(View):
    __slots__ = ("ftag", "ttl")
    name: ClassVar[str] = "cfp"
    next_table: ClassVar[str] = "encap"
    next_key: ClassVar[str] = "eth"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (("ftag", 0, 2), ("ttl", 1, 1))

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, 2)
        v = _H.unpack_from(hdr)[0]
        self.ftag, self.ttl = v >> 6, v & 0x3F
        self.malformed = False

    @property
    def header_len(self) -> int:
        return 2
