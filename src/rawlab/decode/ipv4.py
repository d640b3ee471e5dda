"""IPv4 (RFC 791): header, options, fragments.

    ip = Ipv4(packet)
    ip.version, ip.ihl, ip.tos, ip.total_length, ip.id, ip.flags, ip.frag_offset,
    ip.ttl, ip.proto, ip.checksum, ip.src, ip.dst        # ints; src/dst are 4-byte bytes
    ip.options                       # tuple[Ipv4Option, ...] (parsed on first access)
    ip.is_fragment, ip.more_fragments, ip.dont_fragment
    ip.payload                       # bounded by total_length (Ethernet padding excluded)

``frag_offset`` is in 8-byte units as on the wire (``frag_offset * 8`` bytes).
A total length of 0 is a TSO/GSO artefact (the NIC fills it in): ``tso`` is
True and the payload runs to the end of the capture.
"""

from __future__ import annotations

import struct
from typing import ClassVar, NamedTuple

from construct import BitsInteger, BitStruct, Bytes, Int8ub, Int16ub, Struct

from rawlab.decode.options import OPT_EOL, OPT_NOP, walk
from rawlab.decode.view import Buffer, View, as_view, pad

IPV4_HLEN = 20
IP_RF = 4  # in `flags` (3 bits): reserved / evil bit
IP_DF = 2
IP_MF = 1

# option types (copy/class/number packed in one byte)
IPOPT_EOL = OPT_EOL
IPOPT_NOP = OPT_NOP
IPOPT_RR = 7
IPOPT_TS = 68
IPOPT_SEC = 130
IPOPT_LSRR = 131
IPOPT_SSRR = 137
IPOPT_RA = 148

IPV4_HEADER = Struct(
    "vihl" / BitStruct("version" / BitsInteger(4), "ihl" / BitsInteger(4)),
    "tos" / Int8ub,
    "total_length" / Int16ub,
    "id" / Int16ub,
    "frag" / BitStruct("flags" / BitsInteger(3), "frag_offset" / BitsInteger(13)),
    "ttl" / Int8ub,
    "proto" / Int8ub,
    "checksum" / Int16ub,
    "src" / Bytes(4),
    "dst" / Bytes(4),
)

_HDR = struct.Struct("!BBHHHBBH4s4s")


class Ipv4Option(NamedTuple):
    """One option: its type byte, offset from the start of the IP header, and value bytes."""

    type: int
    offset: int
    data: bytes


def parse_options(raw: memoryview | bytes, base: int) -> tuple[tuple[Ipv4Option, ...], bool]:
    """Options from ``raw`` (the bytes after the fixed header); True if malformed."""
    items, bad = walk(raw, base)
    return tuple(map(Ipv4Option._make, items)), bad


class Ipv4(View):
    __slots__ = (
        "_options", "checksum", "dst", "end", "flags", "frag_offset", "hlen", "id", "ihl", "proto",
        "src", "tos", "total_length", "ttl", "version",
    )
    name: ClassVar[str] = "ipv4"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("version", 0, 1), ("ihl", 0, 1), ("tos", 1, 1), ("total_length", 2, 2), ("id", 4, 2),
        ("flags", 6, 1), ("frag_offset", 6, 2), ("ttl", 8, 1), ("proto", 9, 1),
        ("checksum", 10, 2), ("src", 12, 4), ("dst", 16, 4),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, IPV4_HLEN)
        (vihl, self.tos, tl, self.id, frag, self.ttl, self.proto, self.checksum, self.src,
         self.dst) = _HDR.unpack_from(hdr)
        self.version = vihl >> 4
        self.ihl = ihl = vihl & 0x0F
        self.total_length = tl
        self.flags = frag >> 13
        self.frag_offset = frag & 0x1FFF
        self._options: tuple[Ipv4Option, ...] | None = None
        hl = ihl * 4
        n = len(mv)
        self.malformed = self.version != 4 or ihl < 5 or (tl != 0 and tl < hl)
        self.truncated = trunc or n < hl or n < tl
        self.hlen = hl = max(hl, IPV4_HLEN)
        # offset just past the datagram within the captured bytes (TSO: the capture's end)
        self.end = n if tl < hl else min(tl, n)

    @property
    def header_len(self) -> int:
        return self.hlen

    @property
    def tso(self) -> bool:
        return self.total_length == 0

    @property
    def payload(self) -> memoryview:
        hl = self.hlen
        return self.buf[hl : max(self.end, hl)]

    @property
    def l4_length(self) -> int:
        """Bytes of the transport segment the header says (total length minus the header):
        what tcpdump and tshark call the length even when the capture kept fewer; the
        captured payload's length for a TSO packet (total length 0) or a length too short."""
        tl, hl = self.total_length, self.hlen
        return tl - hl if tl >= hl else len(self.payload)

    @property
    def dscp(self) -> int:
        return self.tos >> 2

    @property
    def ecn(self) -> int:
        return self.tos & 3

    @property
    def more_fragments(self) -> bool:
        return bool(self.flags & IP_MF)

    @property
    def dont_fragment(self) -> bool:
        return bool(self.flags & IP_DF)

    @property
    def is_fragment(self) -> bool:
        return bool(self.flags & IP_MF) or self.frag_offset != 0

    @property
    def options(self) -> tuple[Ipv4Option, ...]:
        if self._options is None:
            raw = self.buf[IPV4_HLEN : min(self.ihl * 4, len(self.buf))]
            self._options, bad = parse_options(raw, IPV4_HLEN)
            if bad:
                self.malformed = True
        return self._options

    @property
    def options_raw(self) -> bytes:
        return bytes(self.buf[IPV4_HLEN : min(self.ihl * 4, len(self.buf))])
