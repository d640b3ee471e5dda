"""Spanning tree BPDUs (IEEE 802.1D STP, 802.1w RSTP, 802.1s MSTP; Cisco PVST+): after
LLC SAP 0x42 (or SNAP 0x00000c/0x010b).

    s = Stp(bpdu)
    s.protocol, s.version, s.type   # 0; 0 STP / 2 RSTP / 3 MSTP; 0x00 config, 0x80 TCN,
                                    # 0x02 RST/MST
    s.flags                         # TC, proposal, port role, learning, forwarding,
                                    # agreement, TC ack
    s.root_id, s.bridge_id          # 8-byte bridge identifiers (priority + system id
                                    # extension in the first 2 bytes, then the MAC)
    s.root_cost, s.port             # ints
    s.msg_age, s.max_age, s.hello, s.forward     # timers in 1/256 s, as on the wire
    s.version_1_length              # RSTP and later (None before)
    s.mst                           # MSTP: {version_3_length, config_format_selector,
                                    # config_name, config_revision_level, config_digest,
                                    # cist_internal_root_path_cost, cist_bridge_id,
                                    # cist_remaining_hops, msti: [{flags, regional_root_id,
                                    # internal_root_path_cost, bridge_priority,
                                    # port_priority, remaining_hops}]}, else None
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import Byte, Bytes, Int16ub, Int32ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

BPDU_CONFIG = 0x00
BPDU_TCN = 0x80
BPDU_RST = 0x02
STP_CONFIG_LEN = 35
TCN_LEN = 4

STP_BPDU = Struct(
    "protocol" / Int16ub, "version" / Byte, "type" / Byte, "flags" / Byte,
    "root_id" / Bytes(8), "root_cost" / Int32ub, "bridge_id" / Bytes(8), "port" / Int16ub,
    "msg_age" / Int16ub, "max_age" / Int16ub, "hello" / Int16ub, "forward" / Int16ub,
)

_HDR = struct.Struct("!HBBB8sI8sHHHHH")
_MST = struct.Struct("!HB32sH16sI8sB")
_MSTI = struct.Struct("!B8sIBBB")


def bridge_id(b: bytes) -> tuple[int, int, bytes]:
    """(priority, system id extension, MAC) of an 8-byte bridge identifier."""
    v = b[0] << 8 | b[1]
    return v & 0xF000, v & 0x0FFF, b[2:8]


class Stp(View):
    __slots__ = ("bridge_id", "flags", "forward", "hello", "max_age", "msg_age", "mst", "port",
                 "protocol", "root_cost", "root_id", "type", "version", "version_1_length")
    name: ClassVar[str] = "stp"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("protocol", 0, 2), ("version", 2, 1), ("type", 3, 1), ("flags", 4, 1),
        ("root_id", 5, 8), ("root_cost", 13, 4), ("bridge_id", 17, 8), ("port", 25, 2),
        ("msg_age", 27, 2), ("max_age", 29, 2), ("hello", 31, 2), ("forward", 33, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        n = len(mv)
        hdr, trunc = pad(mv, STP_CONFIG_LEN)
        (self.protocol, self.version, self.type, self.flags, self.root_id, self.root_cost,
         self.bridge_id, self.port, self.msg_age, self.max_age, self.hello,
         self.forward) = _HDR.unpack_from(hdr)
        self.malformed = self.protocol != 0
        self.version_1_length: int | None = None
        self.mst: dict[str, Any] | None = None
        if self.type == BPDU_TCN:
            self.truncated = n < TCN_LEN
            return
        self.truncated = trunc
        if self.type == BPDU_RST and self.version >= 2 and n > STP_CONFIG_LEN:
            self.version_1_length = mv[STP_CONFIG_LEN]
            if self.version >= 3:
                self._mst(mv, STP_CONFIG_LEN + 1)

    def _mst(self, mv: memoryview, off: int) -> None:
        if len(mv) < off + _MST.size:
            self.truncated = True
            return
        (v3len, sel, name, rev, digest, cost, cist, hops) = _MST.unpack_from(mv, off)
        msti = []
        o = off + _MST.size
        end = off + 2 + v3len
        if end > len(mv):
            self.truncated = True
        while o + _MSTI.size <= min(end, len(mv)):
            f, root, rcost, bprio, pprio, rh = _MSTI.unpack_from(mv, o)
            msti.append({"flags": f, "regional_root_id": root, "internal_root_path_cost": rcost,
                         "bridge_priority": bprio, "port_priority": pprio,
                         "remaining_hops": rh})
            o += _MSTI.size
        self.mst = {"version_3_length": v3len, "config_format_selector": sel,
                    "config_name": name.split(b"\0", 1)[0], "config_revision_level": rev,
                    "config_digest": digest, "cist_internal_root_path_cost": cost,
                    "cist_bridge_id": cist, "cist_remaining_hops": hops, "msti": msti}

    @property
    def header_len(self) -> int:
        n = len(self.buf)
        if self.type == BPDU_TCN:
            return min(n, TCN_LEN)
        if self.mst is not None:
            return min(n, STP_CONFIG_LEN + 3 + self.mst["version_3_length"])
        return min(n, STP_CONFIG_LEN + (1 if self.version_1_length is not None else 0))

    def fields(self) -> dict[str, Any]:
        if self.type == BPDU_TCN:
            return {"protocol": self.protocol, "version": self.version, "type": self.type}
        d = super().fields()
        if self.version_1_length is not None:
            d["version_1_length"] = self.version_1_length
        if self.mst is not None:
            d["mst"] = self.mst
        return d
