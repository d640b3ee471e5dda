"""GRE (RFC 2784, RFC 2890; version 1: PPTP's enhanced GRE, RFC 2637): IP protocol 47.

    g = Gre(packet)
    g.flags_and_version      # the first 16 bits as sent
    g.checksum_present, g.routing_present, g.key_present, g.seq_present, g.ack_present
    g.recursion, g.version   # recursion control (3 bits), version (0 GRE, 1 PPTP)
    g.proto                  # what follows: an EtherType (0x6558 Ethernet, 0x88be and
                             # 0x22eb ERSPAN, 0x880b PPP, 0x8200.. Aruba 802.11 ...)
    g.checksum, g.offset     # when C (or R) is set, else None
    g.key                    # K: 32 bits (NVGRE: VSID << 8 | flow id; PPTP: payload
                             # length << 16 | call id, also in JSON as payload_length
                             # and call_id), else None
    g.seq, g.ack             # S, A (version 1), else None
    g.routing                # R (version 0): tuple of (address family, SRE offset,
                             # SRE bytes) up to the null SRE
    g.wccp                   # WCCP (protocol 0x883e): the 4-byte redirect header when
                             # present (the IP packet follows it), else None
    g.payload

NVGRE is GRE with K set and protocol 0x6558; its VSID is ``key >> 8``.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import Int16ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

GRE_CSUM = 0x8000
GRE_ROUTING = 0x4000
GRE_KEY = 0x2000
GRE_SEQ = 0x1000
GRE_SSR = 0x0800
GRE_ACK = 0x0080
GRE_TEB = 0x6558  # Transparent Ethernet Bridging (also NVGRE)
GRE_ERSPAN_II = 0x88BE  # type I when the sequence number is absent
GRE_ERSPAN_III = 0x22EB
GRE_PPP = 0x880B
GRE_WCCP = 0x883E
GRE_CDP = 0x2000  # Cisco's: a CDP message (not an EtherType)
#: Aruba's WLAN encapsulations: 802.11 frames (Wireshark's GRE_ARUBA_8200 ..)
GRE_ARUBA = frozenset(range(0x8200, 0x8400, 0x10))
#: the "gre" table's pseudo key for ERSPAN type I (protocol 0x88be without a sequence)
GRE_ERSPAN_I = 0x1_0000 | GRE_ERSPAN_II
#: protocol values the "gre" table holds (others are EtherTypes)
GRE_OWN = frozenset((GRE_ERSPAN_II, GRE_ERSPAN_III, GRE_PPP, GRE_CDP)) | GRE_ARUBA
MAX_SRE = 32

GRE_HEADER = Struct("flags_and_version" / Int16ub, "proto" / Int16ub)
_HDR = struct.Struct("!HH")
_H = struct.Struct("!H")
_I = struct.Struct("!I")
_SRE = struct.Struct("!HBB")


class Gre(View):
    __slots__ = ("ack", "checksum", "flags_and_version", "hlen", "key", "offset", "proto",
                 "routing", "seq", "wccp")
    name: ClassVar[str] = "gre"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("flags_and_version", 0, 2), ("proto", 2, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        n = len(mv)
        hdr, trunc = pad(mv, 4)
        self.flags_and_version, self.proto = fv, _p = _HDR.unpack_from(hdr)
        self.checksum = self.offset = self.key = self.seq = self.ack = None
        self.routing: tuple[tuple[int, int, bytes], ...] = ()
        self.malformed = self.version > 1
        o = 4
        if fv & (GRE_CSUM | GRE_ROUTING) and self.version == 0:
            if n >= o + 4:
                self.checksum, self.offset = _HDR.unpack_from(mv, o)
            o += 4
        if fv & GRE_KEY:
            if n >= o + 4:
                self.key = _I.unpack_from(mv, o)[0]
            o += 4
        if fv & GRE_SEQ:
            if n >= o + 4:
                self.seq = _I.unpack_from(mv, o)[0]
            o += 4
        if self.version == 1 and fv & GRE_ACK:
            if n >= o + 4:
                self.ack = _I.unpack_from(mv, o)[0]
            o += 4
        if fv & GRE_ROUTING and self.version == 0:
            o = self._sres(mv, o)
        self.wccp: int | None = None
        if _p == GRE_WCCP and len(mv) > o and mv[o] >> 4 != 4:  # WCCP's redirect header
            self.wccp = _I.unpack_from(mv, o)[0] if n >= o + 4 else None
            o += 4
        self.hlen = o
        self.truncated = trunc or n < o

    def _sres(self, mv: memoryview, o: int) -> int:
        """Source route entries up to the null SRE (RFC 1701)."""
        sres = []
        n = len(mv)
        while o + 4 <= n and len(sres) < MAX_SRE:
            af, sre_off, ln = _SRE.unpack_from(mv, o)
            if af == 0 and ln == 0:
                return o + 4
            sres.append((af, sre_off, bytes(mv[o + 4 : o + 4 + ln])))
            o += 4 + ln
        self.routing = tuple(sres)
        if len(sres) == MAX_SRE:
            self.malformed = True
        return o + 4

    @property
    def version(self) -> int:
        return self.flags_and_version & 7

    @property
    def recursion(self) -> int:
        return self.flags_and_version >> 8 & 7

    @property
    def checksum_present(self) -> bool:
        return bool(self.flags_and_version & GRE_CSUM)

    @property
    def routing_present(self) -> bool:
        return bool(self.flags_and_version & GRE_ROUTING)

    @property
    def key_present(self) -> bool:
        return bool(self.flags_and_version & GRE_KEY)

    @property
    def seq_present(self) -> bool:
        return bool(self.flags_and_version & GRE_SEQ)

    @property
    def ack_present(self) -> bool:
        return self.version == 1 and bool(self.flags_and_version & GRE_ACK)

    @property
    def header_len(self) -> int:
        return self.hlen

    @property
    def next_table(self) -> str:
        if self.proto == GRE_WCCP:
            return "encap"
        return "gre" if self.proto in GRE_OWN else "ethertype"

    @property
    def next_key(self) -> int | str:
        p = self.proto
        if p == GRE_WCCP:
            return "ip"  # WCCP redirection: an IP packet (after the redirect header)
        if p == GRE_ERSPAN_II and not self.flags_and_version & GRE_SEQ:
            return GRE_ERSPAN_I
        return p

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        for k in ("checksum", "offset", "key", "seq", "ack"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        if self.wccp is not None:
            d["wccp"] = self.wccp
        if self.version == 1 and self.key is not None:  # PPTP: the key's two halves
            d.update(payload_length=self.key >> 16, call_id=self.key & 0xFFFF)
        if self.routing:
            d["routing"] = [{"af": a, "sre_offset": o, "sre": s} for a, o, s in self.routing]
        return d
