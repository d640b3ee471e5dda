"""NFLOG records (link type NFLOG, 239): netfilter's log messages, the packet inside.

    f = Nflog(record)
    f.family, f.version, f.res_id     # the 4-byte nfgenmsg (family: 2 IPv4, 10 IPv6)
    f.tlvs                            # tuple[Tlv] (type, offset, value), in order
    f.hw_protocol, f.hook             # NFULA_PACKET_HDR (None when absent)
    f.prefix                          # NFULA_PREFIX bytes without the NUL, or None
    f.indev, f.outdev, f.uid, f.gid, f.mark    # ints, or None when absent
    f.payload                         # NFULA_PAYLOAD: the logged packet (zero-copy)

The TLVs' length and type are in the capturing host's byte order (libpcap's
LINKTYPE_NFLOG page); like Wireshark's default this reads them little-endian.
Each length counts its 4-byte header; TLVs are 4-byte aligned. The type's top
bit (NLA_F_NESTED) is masked off. The payload is IPv4 or IPv6 by ``family``,
else by the packet header's hardware protocol (an EtherType).
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import Byte, GreedyRange, Int16ub, Int16ul, Struct

from rawlab.decode.tlv import MALFORMED, TRUNCATED, walk
from rawlab.decode.view import Buffer, View, as_view, pad

NFLOG_HLEN = 4
NFULA_PACKET_HDR = 1
NFULA_MARK = 2
NFULA_TIMESTAMP = 3
NFULA_IFINDEX_INDEV = 4
NFULA_IFINDEX_OUTDEV = 5
NFULA_IFINDEX_PHYSINDEV = 6
NFULA_IFINDEX_PHYSOUTDEV = 7
NFULA_HWADDR = 8
NFULA_PAYLOAD = 9
NFULA_PREFIX = 10
NFULA_UID = 11
NFULA_SEQ = 12
NFULA_SEQ_GLOBAL = 13
NFULA_GID = 14
NFULA_HWTYPE = 15
NFULA_HWHEADER = 16
NFULA_HWLEN = 17
AF_INET = 2
AF_INET6 = 10

NFLOG_HEADER = Struct(
    "family" / Byte, "version" / Byte, "res_id" / Int16ub,
    "tlvs" / GreedyRange(Struct("length" / Int16ul, "type" / Int16ul)),
)

_HDR = struct.Struct("!BBH")
_TL = struct.Struct("<HH")
_U32 = struct.Struct("!I")
#: the TLVs that hold one big-endian 32-bit value
_U32_TLVS = {NFULA_MARK: "mark", NFULA_IFINDEX_INDEV: "indev", NFULA_IFINDEX_OUTDEV: "outdev",
             NFULA_IFINDEX_PHYSINDEV: "physindev", NFULA_IFINDEX_PHYSOUTDEV: "physoutdev",
             NFULA_UID: "uid", NFULA_GID: "gid"}


def _head(buf: memoryview, pos: int) -> tuple[int, int]:
    ln, typ = _TL.unpack_from(buf, pos)
    return typ & 0x7FFF, ln


class Nflog(View):
    __slots__ = ("_pl", "family", "res_id", "tlvs", "version")
    name: ClassVar[str] = "nflog"
    next_table: ClassVar[str] = "ethertype"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("family", 0, 1), ("version", 1, 1), ("res_id", 2, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, NFLOG_HLEN)
        self.family, self.version, self.res_id = _HDR.unpack_from(hdr)
        items, trouble = walk(mv, NFLOG_HLEN, len(mv), _head, 4, inclusive=True, align=4)
        self.tlvs = tuple(items)
        self.truncated = trunc or trouble == TRUNCATED
        self.malformed = trouble == MALFORMED
        self._pl: tuple[int, int] | None = None
        for t in items:
            if t.type == NFULA_PAYLOAD:
                self._pl = (t.offset + 4, t.offset + 4 + len(t.value))
                break

    def _value(self, typ: int) -> bytes | None:
        for t in self.tlvs:
            if t.type == typ:
                return t.value
        return None

    def _u32(self, typ: int) -> int | None:
        v = self._value(typ)
        return _U32.unpack_from(v)[0] if v is not None and len(v) >= 4 else None

    @property
    def hw_protocol(self) -> int | None:
        v = self._value(NFULA_PACKET_HDR)
        return v[0] << 8 | v[1] if v is not None and len(v) >= 2 else None

    @property
    def hook(self) -> int | None:
        v = self._value(NFULA_PACKET_HDR)
        return v[2] if v is not None and len(v) >= 3 else None

    @property
    def prefix(self) -> bytes | None:
        v = self._value(NFULA_PREFIX)
        return None if v is None else v.split(b"\0", 1)[0]

    @property
    def indev(self) -> int | None:
        return self._u32(NFULA_IFINDEX_INDEV)

    @property
    def outdev(self) -> int | None:
        return self._u32(NFULA_IFINDEX_OUTDEV)

    @property
    def mark(self) -> int | None:
        return self._u32(NFULA_MARK)

    @property
    def uid(self) -> int | None:
        return self._u32(NFULA_UID)

    @property
    def gid(self) -> int | None:
        return self._u32(NFULA_GID)

    @property
    def header_len(self) -> int:
        return self._pl[0] if self._pl else len(self.buf)

    @property
    def payload(self) -> memoryview:
        if self._pl is None:
            return self.buf[len(self.buf):]
        return self.buf[self._pl[0] : self._pl[1]]

    @property
    def next_key(self) -> int | None:
        if self.family == AF_INET:
            return 0x0800
        if self.family == AF_INET6:
            return 0x86DD
        return self.hw_protocol

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        d["tlvs"] = [{"type": t.type, "length": _TL.unpack_from(self.buf, t.offset)[0],
                      "value": t.value if t.type != NFULA_PAYLOAD else None}
                     for t in self.tlvs]
        d.update(hw_protocol=self.hw_protocol, hook=self.hook, prefix=self.prefix)
        for typ, attr in _U32_TLVS.items():
            v = self._u32(typ)
            if v is not None:
                d[attr] = v
        return d
