"""Apple's PKTAP records (link type PKTAP, 258; also USER2, 149, as macOS wrote them):
a per-packet header naming the interface, process and link type, then the packet.

    p = Pktap(record)
    p.hdrlen, p.rectype, p.dlt      # header length, 1 = a packet follows, its link type
    p.ifname, p.cmdname, p.ecmdname # NUL-terminated names (bytes)
    p.flags, p.pfamily, p.llhdrlen, p.lltrlrlen, p.pid, p.svc_class, p.iftype,
    p.ifunit, p.epid                # ints
    p.payload                       # the packet, of link type ``dlt``

Little-endian (the host's order on every Mac that writes it), 108 bytes in the
known layout; ``hdrlen`` says where the packet starts.
"""

from __future__ import annotations

import struct
from typing import ClassVar

from construct import Bytes, Int16ul, Int32ul, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

PKTAP_HLEN = 108
PTH_TYPE_PACKET = 1

PKTAP_HEADER = Struct(
    "hdrlen" / Int32ul, "rectype" / Int32ul, "dlt" / Int32ul, "ifname" / Bytes(24),
    "flags" / Int32ul, "pfamily" / Int32ul, "llhdrlen" / Int32ul, "lltrlrlen" / Int32ul,
    "pid" / Int32ul, "cmdname" / Bytes(20), "svc_class" / Int32ul, "iftype" / Int16ul,
    "ifunit" / Int16ul, "epid" / Int32ul, "ecmdname" / Bytes(20),  # pids as Wireshark: unsigned
)
_HDR = struct.Struct("<III24sIIIII20sIHHI20s")


def _cstr(b: bytes) -> bytes:
    return b.split(b"\0", 1)[0]


class Pktap(View):
    __slots__ = ("cmdname", "dlt", "ecmdname", "epid", "flags", "hdrlen", "ifname", "iftype",
                 "ifunit", "llhdrlen", "lltrlrlen", "pfamily", "pid", "rectype", "svc_class")
    name: ClassVar[str] = "pktap"
    next_table: ClassVar[str] = "link"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("hdrlen", 0, 4), ("rectype", 4, 4), ("dlt", 8, 4), ("ifname", 12, 24),
        ("flags", 36, 4), ("pfamily", 40, 4), ("llhdrlen", 44, 4), ("lltrlrlen", 48, 4),
        ("pid", 52, 4), ("cmdname", 56, 20), ("svc_class", 76, 4), ("iftype", 80, 2),
        ("ifunit", 82, 2), ("epid", 84, 4), ("ecmdname", 88, 20),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, PKTAP_HLEN)
        (self.hdrlen, self.rectype, self.dlt, ifname, self.flags, self.pfamily, self.llhdrlen,
         self.lltrlrlen, self.pid, cmd, self.svc_class, self.iftype, self.ifunit, self.epid,
         ecmd) = _HDR.unpack_from(hdr)
        self.ifname, self.cmdname, self.ecmdname = _cstr(ifname), _cstr(cmd), _cstr(ecmd)
        self.malformed = self.hdrlen < PKTAP_HLEN
        self.truncated = trunc or len(mv) < self.hdrlen

    @property
    def header_len(self) -> int:
        return max(self.hdrlen, PKTAP_HLEN)

    def fields(self) -> dict[str, object]:
        if self.malformed:
            return {"hdrlen": self.hdrlen}  # the rest of the layout is not there
        return super().fields()

    @property
    def next_key(self) -> int | None:
        return self.dlt if self.rectype == PTH_TYPE_PACKET and not self.malformed else None
