"""MPLS label stacks (RFC 3032; EtherTypes 0x8847 unicast and 0x8848 multicast, PPP
0x0281, UDP 6635, GRE, VXLAN-GPE, NSH).

    m = Mpls(packet)
    m.labels            # tuple of MplsLabel(label, exp, bottom, ttl), outermost first
    m.label, m.exp, m.bottom, m.ttl   # the outermost entry's fields
    m.payload           # after the bottom of the stack

What follows the stack is not named by it: as Wireshark, a first nibble of 4 is
IPv4, 6 is IPv6; anything else is a pseudowire: a first nibble of 0 is the
control word (4 bytes) and an Ethernet frame after it (``control_word``), 1 is
the PW associated channel; the rest stays data.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar, NamedTuple

from construct import BitsInteger, BitStruct, GreedyRange

from rawlab.decode.view import Buffer, View, as_view

MPLS_PORT = 6635  # MPLS in UDP (RFC 7510)
MAX_LABELS = 16
MPLS_ENTRY = BitStruct("label" / BitsInteger(20), "exp" / BitsInteger(3),
                       "bottom" / BitsInteger(1), "ttl" / BitsInteger(8))
MPLS_STACK = GreedyRange(MPLS_ENTRY)
_I = struct.Struct("!I")


class MplsLabel(NamedTuple):
    label: int
    exp: int
    bottom: int
    ttl: int


class Mpls(View):
    __slots__ = ("labels",)
    name: ClassVar[str] = "mpls"

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        labels: list[MplsLabel] = []
        o = 0
        n = len(mv)
        bottom = False
        while o + 4 <= n and len(labels) < MAX_LABELS:
            v = _I.unpack_from(mv, o)[0]
            labels.append(MplsLabel(v >> 12, v >> 9 & 7, v >> 8 & 1, v & 0xFF))
            o += 4
            if v & 0x100:
                bottom = True
                break
        self.labels = tuple(labels)
        self.truncated = not bottom and len(labels) < MAX_LABELS
        self.malformed = not bottom and len(labels) == MAX_LABELS

    @property
    def header_len(self) -> int:
        return 4 * len(self.labels)

    @property
    def label(self) -> int | None:
        return self.labels[0].label if self.labels else None

    @property
    def exp(self) -> int | None:
        return self.labels[0].exp if self.labels else None

    @property
    def bottom(self) -> int | None:
        return self.labels[0].bottom if self.labels else None

    @property
    def ttl(self) -> int | None:
        return self.labels[0].ttl if self.labels else None

    @property
    def next_table(self) -> str:
        return "encap"

    @property
    def next_key(self) -> str | None:
        if self.truncated or self.malformed:
            return None
        hl = self.header_len
        if len(self.buf) <= hl:
            return None
        nib = self.buf[hl] >> 4
        if nib in (4, 6):
            return "ip"
        return "pwcw" if nib == 0 else "data"

    def fields(self) -> dict[str, Any]:
        return {"labels": [lab._asdict() for lab in self.labels]}


class PwControlWord(View):
    """The 4-byte generic pseudowire control word (RFC 4385): flags, length, sequence;
    an Ethernet frame follows (Wireshark's default for a first nibble of 0)."""

    __slots__ = ("flags", "length", "sequence")
    name: ClassVar[str] = "pwethcw"
    next_table: ClassVar[str] = "encap"
    next_key: ClassVar[str] = "eth"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("flags", 0, 2), ("length", 1, 1), ("sequence", 2, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        self.truncated = len(mv) < 4
        v = _I.unpack_from(bytes(mv[:4]).ljust(4, b"\0"))[0]
        self.flags, self.length, self.sequence = v >> 22 & 0x3F, v >> 16 & 0x3F, v & 0xFFFF
        self.malformed = v >> 28 != 0

    @property
    def header_len(self) -> int:
        return 4
