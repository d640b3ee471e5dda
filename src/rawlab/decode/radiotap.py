"""Radiotap (link type IEEE802_11_RADIOTAP, 127): the radio's view of an 802.11 frame.

    r = Radiotap(record)
    r.version, r.pad, r.length     # header: version 0, padding, total header length (LE);
                                   # another version: nothing more is read (Wireshark)
    r.present                      # tuple of every presence word (bit 31: another follows)
    r.values                       # {field name: value}: the fields of the radiotap
                                   # namespace, each an int or a tuple of ints
    r.more                         # the same for each further radiotap namespace (the
                                   # per-antenna fields after a bit-29 word), in order
    r.flags                        # the Flags field (None when absent): 0x10 = FCS at end
    r.fcs                          # the 4-byte FCS when the flags say it is there, else None
    r.payload                      # the 802.11 frame (without the FCS)

Fields are little-endian and aligned to their natural size from the start of the
header (radiotap.org, "Alignment in Radiotap"). A field rawlab does not know the
size of ends the walk (as tcpdump: nothing after it can be placed); vendor
namespaces are stepped over by their skip length. Units are the wire's: ``rate``
in 500 kb/s, ``channel`` = (MHz, flags).
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import Byte, Int16ul, Int32ul, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

RADIOTAP_HLEN = 8
FLAG_FCS = 0x10
FLAG_DATAPAD = 0x20
FLAG_BADFCS = 0x40
BIT_TLV = 28
BIT_RADIOTAP_NS = 29
BIT_VENDOR_NS = 30
BIT_EXT = 31
MAX_PRESENT_WORDS = 32

RADIOTAP_HEADER = Struct("version" / Byte, "pad" / Byte, "length" / Int16ul,
                         "present" / Int32ul)

#: bit -> (name, alignment, struct of the field) in the radiotap namespace
RADIOTAP_FIELDS: dict[int, tuple[str, int, struct.Struct]] = {
    b: (name, align, struct.Struct("<" + fmt)) for b, name, align, fmt in (
        (0, "tsft", 8, "Q"), (1, "flags", 1, "B"), (2, "rate", 1, "B"),
        (3, "channel", 2, "HH"), (4, "fhss", 1, "BB"), (5, "dbm_antsignal", 1, "b"),
        (6, "dbm_antnoise", 1, "b"), (7, "lock_quality", 2, "H"),
        (8, "tx_attenuation", 2, "H"), (9, "db_tx_attenuation", 2, "H"),
        (10, "dbm_tx_power", 1, "b"), (11, "antenna", 1, "B"), (12, "db_antsignal", 1, "B"),
        (13, "db_antnoise", 1, "B"), (14, "rx_flags", 2, "H"), (15, "tx_flags", 2, "H"),
        (16, "rts_retries", 1, "B"), (17, "data_retries", 1, "B"),
        (18, "xchannel", 4, "IHBB"), (19, "mcs", 1, "BBB"), (20, "ampdu", 4, "IHBB"),
        (21, "vht", 2, "HBB4BBBH"), (22, "timestamp", 8, "QHBB"), (23, "he", 2, "6H"),
        (24, "he_mu", 2, "HH8B"), (25, "he_mu_other_user", 2, "HHBB"),
        (26, "zero_length_psdu", 1, "B"), (27, "l_sig", 2, "HH"),
    )
}
_HDR = struct.Struct("<BBHI")
_U32 = struct.Struct("<I")
_VENDOR = struct.Struct("<3sBH")


class Radiotap(View):
    __slots__ = ("flags", "length", "more", "pad", "present", "values", "version")
    name: ClassVar[str] = "radiotap"
    next_table: ClassVar[str] = "encap"
    next_key: ClassVar[str] = "wlan"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("version", 0, 1), ("pad", 1, 1), ("length", 2, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, RADIOTAP_HLEN)
        self.version, self.pad, self.length, first = _HDR.unpack_from(hdr)
        self.malformed = self.length < RADIOTAP_HLEN
        end = min(self.length, len(mv))
        self.truncated = trunc or len(mv) < self.length
        self.values: dict[str, Any] = {}
        self.more: list[dict[str, Any]] = []
        if self.version != 0:  # as Wireshark: the length still says where 802.11 starts
            self.present: tuple[int, ...] = ()
            self.flags: int | None = None
            return
        words = [first]
        off = 8
        while words[-1] >> BIT_EXT & 1:
            if len(words) == MAX_PRESENT_WORDS or off + 4 > end:
                self.malformed = self.malformed or off + 4 > self.length or (
                    len(words) == MAX_PRESENT_WORDS)
                self.truncated = self.truncated or off + 4 > len(mv)
                break
            words.append(_U32.unpack_from(mv, off)[0])
            off += 4
        self.present = tuple(words)
        if not self.malformed:
            self._walk(mv, off, end)
        self.flags = self.values.get("flags")

    def _walk(self, mv: memoryview, off: int, end: int) -> None:
        """The fields of the radiotap namespace, in bit order (vendor namespaces skipped)."""
        values = self.values
        ns_radiotap = True
        base = 0  # field number of bit 0 of this word within its namespace
        for w in self.present:
            for b in range(29):
                if not w >> b & 1 or not ns_radiotap:
                    continue
                spec = RADIOTAP_FIELDS.get(base + b)
                if spec is None:
                    return  # unknown size: nothing after it can be placed
                name, align, st = spec
                off = -(-off // align) * align
                if off + st.size > end:
                    self.truncated = self.truncated or off + st.size > len(mv)
                    self.malformed = self.malformed or off + st.size > self.length
                    return
                v = st.unpack_from(mv, off)
                values[name] = v[0] if len(v) == 1 else v
                off += st.size
            if w >> BIT_VENDOR_NS & 1:
                off = -(-off // 2) * 2
                if off + 6 > end:
                    return
                skip = _VENDOR.unpack_from(mv, off)[2]
                off += 6 + skip
                ns_radiotap, base = False, 0
            elif w >> BIT_RADIOTAP_NS & 1:
                ns_radiotap, base = True, 0
                self.more.append({})
                values = self.more[-1]
            else:
                base += 32

    @property
    def header_len(self) -> int:
        return max(self.length, RADIOTAP_HLEN)

    @property
    def fcs(self) -> bytes | None:
        if self.flags is None or not self.flags & FLAG_FCS or len(self.buf) < self.length + 4:
            return None
        return bytes(self.buf[-4:])

    @property
    def payload(self) -> memoryview:
        hl = min(self.header_len, len(self.buf))
        end = len(self.buf) - (4 if self.fcs is not None else 0)
        return self.buf[hl : max(end, hl)]

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        d["present"] = list(self.present)
        d.update(self.values)
        if self.more:
            d["more"] = self.more
        if self.fcs is not None:
            d["fcs"] = self.fcs
        return d
