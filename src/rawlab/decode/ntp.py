"""NTP (RFC 5905; mode 6 control, RFC 9327; mode 7, ntpd's private mode).

    n = Ntp(udp_payload)
    n.li, n.vn, n.mode                        # from the first byte
    # modes 1-5 (the time packet, 48 bytes + extensions/MAC):
    n.stratum, n.poll, n.precision            # poll/precision signed (log2 seconds)
    n.root_delay, n.root_dispersion           # raw 32-bit NTP short format (16.16)
    n.refid                                   # 4 bytes
    n.ref_ts, n.orig_ts, n.recv_ts, n.xmit_ts # raw 64-bit NTP timestamps (32.32)
    # mode 6 (control): n.response, n.error, n.more, n.opcode, n.sequence, n.status,
    #                   n.association_id, n.offset, n.count, n.data
    # mode 7 (private): n.response, n.more, n.auth, n.sequence, n.implementation,
    #                   n.request, n.error, n.items, n.item_size

Timestamps stay as the raw 64-bit values (only present/ turns them into dates).
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import BitsInteger, BitStruct, Bytes, Int8sb, Int8ub, Int32ub, Int64ub, Struct

from rawlab.decode.view import AppView, Buffer, as_view, pad

PORT_NTP = 123
NTP_HLEN = 48
MODE_CONTROL = 6
MODE_PRIVATE = 7
MODE_NAMES = {0: "reserved", 1: "symmetric active", 2: "symmetric passive", 3: "client",
              4: "server", 5: "broadcast", 6: "control", 7: "private"}
#: seconds between the NTP era 0 epoch (1900) and the Unix epoch
NTP_UNIX_OFFSET = 2_208_988_800

NTP_HEADER = Struct(
    "flags" / BitStruct("li" / BitsInteger(2), "vn" / BitsInteger(3), "mode" / BitsInteger(3)),
    "stratum" / Int8ub, "poll" / Int8sb, "precision" / Int8sb, "root_delay" / Int32ub,
    "root_dispersion" / Int32ub, "refid" / Bytes(4), "ref_ts" / Int64ub, "orig_ts" / Int64ub,
    "recv_ts" / Int64ub, "xmit_ts" / Int64ub,
)
_TIME = struct.Struct("!BBbbII4sQQQQ")
_CONTROL = struct.Struct("!BBHHHHH")  # flags, R/E/M/op, sequence, status, assoc, offset, count
_PRIVATE = struct.Struct("!BBBBHH")  # flags, A/sequence, implementation, request, err/nitems,
#                                       mbz/itemsize
CONTROL_HLEN = 12
PRIVATE_HLEN = 8


class Ntp(AppView):
    __slots__ = ("_f", "li", "mode", "vn")
    name: ClassVar[str] = "ntp"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("li", 0, 1), ("vn", 0, 1), ("mode", 0, 1),
    )
    TIME_FIELDS: ClassVar[tuple[str, ...]] = (
        "stratum", "poll", "precision", "root_delay", "root_dispersion", "refid", "ref_ts",
        "orig_ts", "recv_ts", "xmit_ts")
    CONTROL_FIELDS: ClassVar[tuple[str, ...]] = (
        "response", "error", "more", "opcode", "sequence", "status", "association_id",
        "offset", "count")
    PRIVATE_FIELDS: ClassVar[tuple[str, ...]] = (
        "response", "more", "auth", "sequence", "implementation", "request", "error", "items",
        "item_size")

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        b0 = mv[0] if len(mv) else 0
        self.li, self.vn, self.mode = b0 >> 6, b0 >> 3 & 7, b0 & 7
        self.malformed = False
        f: dict[str, Any] = {}
        if self.mode == MODE_CONTROL:
            hdr, self.truncated = pad(mv, CONTROL_HLEN)
            _b0, reop, seq, status, assoc, off, count = _CONTROL.unpack_from(hdr)
            f.update(response=reop >> 7, error=reop >> 6 & 1, more=reop >> 5 & 1,
                     opcode=reop & 0x1F, sequence=seq, status=status, association_id=assoc,
                     offset=off, count=count)
            f["data"] = bytes(mv[CONTROL_HLEN : CONTROL_HLEN + count])
            if len(mv) < CONTROL_HLEN + count:
                self.truncated = True
        elif self.mode == MODE_PRIVATE:
            hdr, self.truncated = pad(mv, PRIVATE_HLEN)
            _b0, aseq, impl, req, en, mi = _PRIVATE.unpack_from(hdr)
            f.update(response=b0 >> 7, more=b0 >> 6 & 1, auth=aseq >> 7, sequence=aseq & 0x7F,
                     implementation=impl, request=req, error=en >> 12, items=en & 0xFFF,
                     item_size=mi & 0xFFF)
        else:
            hdr, self.truncated = pad(mv, NTP_HLEN)
            vals = _TIME.unpack_from(hdr)[1:]
            f.update(zip(self.TIME_FIELDS, vals, strict=True))
        self._f = f
        self.frames = ()

    def __getattr__(self, name: str) -> Any:
        if name == "_f":
            raise AttributeError(name)
        try:
            return self._f[name]  # the mode's own fields (class docstring)
        except KeyError:
            raise AttributeError(name) from None


    @property
    def extra(self) -> memoryview:
        """What follows the 48-byte time packet: extension fields and/or the MAC."""
        return self.buf[NTP_HLEN:] if self.mode not in (MODE_CONTROL, MODE_PRIVATE) else (
            self.buf[len(self.buf):])

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        d.update(self._f)
        return d
