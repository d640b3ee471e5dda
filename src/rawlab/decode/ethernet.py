"""Ethernet II frames with any number of 802.1Q / 802.1ad VLAN tags.

    eth = Ethernet(frame)           # never raises
    eth.dst, eth.src                # 6-byte bytes
    eth.type                        # the type/TPID field at offset 12
    eth.tags                        # tuple[VlanTag, ...], outermost first
    eth.ethertype                   # the innermost type: what the payload is
    eth.payload                     # memoryview after the last tag

A type below 0x0600 is an 802.3 length (the payload is LLC): ``is_8023`` is
True and ``ethertype`` keeps that number, which no decoder claims.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar, NamedTuple

from construct import BitsInteger, BitStruct, Bytes, Int16ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
ETH_P_IPV6 = 0x86DD
ETH_P_8021AD = 0x88A8
ETH_P_QINQ1 = 0x9100
ETH_P_QINQ2 = 0x9200
VLAN_TPIDS = frozenset((ETH_P_8021Q, ETH_P_8021AD, ETH_P_QINQ1, ETH_P_QINQ2))
ETH_HLEN = 14
MAX_TAGS = 8  # more than this is not a real frame: stop and flag it malformed

ETHERNET_HEADER = Struct("dst" / Bytes(6), "src" / Bytes(6), "type" / Int16ub)
VLAN_TAG = Struct(
    "tci" / BitStruct("pcp" / BitsInteger(3), "dei" / BitsInteger(1), "vid" / BitsInteger(12)),
    "type" / Int16ub,
)

_HDR = struct.Struct("!6s6sH")
_H = struct.Struct("!H")
_TAG = struct.Struct("!HH")


class VlanTag(NamedTuple):
    """One tag: its TPID (0x8100 C-tag, 0x88a8 S-tag ...) and its TCI."""

    tpid: int
    tci: int

    @property
    def pcp(self) -> int:
        return self.tci >> 13

    @property
    def dei(self) -> int:
        return (self.tci >> 12) & 1

    @property
    def vid(self) -> int:
        return self.tci & 0x0FFF


class Ethernet(View):
    __slots__ = ("dst", "ethertype", "hlen", "src", "tags", "type")
    name: ClassVar[str] = "eth"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("dst", 0, 6), ("src", 6, 6), ("type", 12, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        self.malformed = False
        hdr, self.truncated = pad(mv, ETH_HLEN)
        self.dst, self.src, t = _HDR.unpack_from(hdr)
        self.type = t
        tags: list[VlanTag] = []
        off = ETH_HLEN
        n = len(mv)
        while t in VLAN_TPIDS:
            if len(tags) == MAX_TAGS:
                self.malformed = True
                break
            if off + 4 > n:
                self.truncated = True
                break
            tci, nt = _TAG.unpack_from(mv, off)
            tags.append(VlanTag(t, tci))
            t = nt
            off += 4
        self.tags = tuple(tags)
        self.ethertype = t
        self.hlen = off

    @property
    def header_len(self) -> int:
        return self.hlen

    @property
    def is_8023(self) -> bool:
        return self.ethertype < 0x0600

    @property
    def vlan(self) -> int | None:
        """The outermost VLAN id, if tagged."""
        return self.tags[0].vid if self.tags else None

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        d["tags"] = [{"tpid": t.tpid, "pcp": t.pcp, "dei": t.dei, "vid": t.vid} for t in self.tags]
        d["ethertype"] = self.ethertype
        return d
