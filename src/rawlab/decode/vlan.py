"""An 802.1Q / 802.1ad tag that follows another header than Ethernet's (after a
vendor shim, inside PBB, MACsec, VN-Tag ...): a layer of its own. Tags right after
the Ethernet addresses belong to :class:`~rawlab.decode.ethernet.Ethernet`.

    v = Vlan(body)          # what follows the 0x8100 / 0x88a8 / 0x9100 / 0x9200
    v.tci, v.pcp, v.dei, v.vid
    v.etype                 # the EtherType after the tag
"""

from __future__ import annotations

import struct
from typing import ClassVar

from rawlab.decode.ethernet import VLAN_TAG
from rawlab.decode.view import Buffer, View, as_view, pad

VLAN_SCHEMA = VLAN_TAG
_HDR = struct.Struct("!HH")


class Vlan(View):
    __slots__ = ("etype", "tci")
    name: ClassVar[str] = "vlan"
    next_table: ClassVar[str] = "ethertype"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (("tci", 0, 2), ("etype", 2, 2))

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, 4)
        self.tci, self.etype = _HDR.unpack_from(hdr)
        self.malformed = False

    @property
    def pcp(self) -> int:
        return self.tci >> 13

    @property
    def dei(self) -> int:
        return self.tci >> 12 & 1

    @property
    def vid(self) -> int:
        return self.tci & 0xFFF

    @property
    def header_len(self) -> int:
        return 4

    @property
    def next_key(self) -> int:
        return self.etype

    def fields(self) -> dict[str, object]:
        d = super().fields()
        if d.get("tci") is not None:
            d.update(pcp=self.pcp, dei=self.dei, vid=self.vid)
        return d
