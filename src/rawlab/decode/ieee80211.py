"""IEEE 802.11 frames (link type IEEE802_11, 105; inside radiotap, 127): the MAC header,
management frames' fixed fields and elements, and the data frames' LLC payload.

    w = Wlan(frame)
    w.fc                       # frame control as tshark shows it (first byte << 8 | flags)
    w.version, w.type, w.subtype, w.flags   # type 0 management, 1 control, 2 data, 3 ext
    w.tods, w.fromds, w.protected, w.order  # flag bits
    w.duration                 # duration/ID (LE)
    w.addr1 .. w.addr4         # 6-byte bytes, None when the frame has no such address
    w.ra, w.ta, w.da, w.sa, w.bssid   # the roles the addresses play (tshark's names)
    w.seq, w.frag              # sequence control (None for control frames)
    w.qos, w.htc               # QoS control, HT control (None when absent)
    w.fixed                    # management: {reason_code, timestamp, beacon_interval,
                               #  capabilities, listen_interval, status_code, aid,
                               #  current_ap, auth_alg, auth_seq, category}
    w.elements                 # management: tuple[Tlv] (element id, offset, value)
    w.ssid                     # element 0's value (bytes), or None
    w.payload                  # data frames: the LLC body (None-protocol frames: empty)

A protected (encrypted) data frame's body is data; a data frame without a body
(null function, QoS null) ends the walk. Values are the wire's (little-endian
numbers; addresses as bytes). Protocol version 1 (802.11ah) frames show their frame
control and receiver address only; versions 2 and 3 only the version.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import Bytes, Int8ub, Int16ul, Struct

from rawlab.decode.tlv import MALFORMED, TRUNCATED, Tlv, walk
from rawlab.decode.view import Buffer, View, as_view

TYPE_MGMT = 0
TYPE_CONTROL = 1
TYPE_DATA = 2
TYPE_EXTENSION = 3
FLAG_TODS = 0x01
FLAG_FROMDS = 0x02
FLAG_MOREFRAG = 0x04
FLAG_RETRY = 0x08
FLAG_PWRMGT = 0x10
FLAG_MOREDATA = 0x20
FLAG_PROTECTED = 0x40
FLAG_ORDER = 0x80
EID_SSID = 0

# management subtypes
ASSOC_REQ, ASSOC_RESP, REASSOC_REQ, REASSOC_RESP, PROBE_REQ, PROBE_RESP = 0, 1, 2, 3, 4, 5
BEACON, ATIM, DISASSOC, AUTH, DEAUTH, ACTION, ACTION_NOACK = 8, 9, 10, 11, 12, 13, 14
# control subtypes
CTL_WRAPPER, BAR, BA, PS_POLL, RTS, CTS, ACK, CF_END, CF_END_ACK = 7, 8, 9, 10, 11, 12, 13, 14, 15

WLAN_HEADER = Struct("fc0" / Int8ub, "flags" / Int8ub, "duration" / Int16ul,
                     "addr1" / Bytes(6), "addr2" / Bytes(6), "addr3" / Bytes(6),
                     "seq_ctrl" / Int16ul)

#: management subtype -> its fixed fields: (name, struct format) in order
MGMT_FIXED: dict[int, tuple[tuple[str, str], ...]] = {
    ASSOC_REQ: (("capabilities", "H"), ("listen_interval", "H")),
    ASSOC_RESP: (("capabilities", "H"), ("status_code", "H"), ("aid", "H")),
    REASSOC_REQ: (("capabilities", "H"), ("listen_interval", "H"), ("current_ap", "6s")),
    REASSOC_RESP: (("capabilities", "H"), ("status_code", "H"), ("aid", "H")),
    PROBE_REQ: (),
    PROBE_RESP: (("timestamp", "Q"), ("beacon_interval", "H"), ("capabilities", "H")),
    BEACON: (("timestamp", "Q"), ("beacon_interval", "H"), ("capabilities", "H")),
    ATIM: (),
    DISASSOC: (("reason_code", "H"),),
    AUTH: (("auth_alg", "H"), ("auth_seq", "H"), ("status_code", "H")),
    DEAUTH: (("reason_code", "H"),),
}
_FIXED = {k: (tuple(n for n, _f in v), struct.Struct("<" + "".join(f for _n, f in v)))
          for k, v in MGMT_FIXED.items()}
_H = struct.Struct("<H")
_I = struct.Struct("<I")


def _eid_head(buf: memoryview, pos: int) -> tuple[int, int]:
    return buf[pos], buf[pos + 1]


class Wlan(View):
    __slots__ = ("addr1", "addr2", "addr3", "addr4", "duration", "elements", "fc0", "fixed",
                 "flags", "hlen", "htc", "qos", "seq_ctrl")
    name: ClassVar[str] = "wlan"
    next_table: ClassVar[str] = "encap"

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        n = len(mv)
        self.malformed = False
        self.fc0 = mv[0] if n else None
        self.flags = mv[1] if n > 1 else None
        self.duration = _H.unpack_from(mv, 2)[0] if n >= 4 else None
        self.addr1 = self.addr2 = self.addr3 = self.addr4 = None
        self.seq_ctrl = self.qos = self.htc = None
        self.fixed: dict[str, Any] = {}
        self.elements: tuple[Tlv, ...] = ()
        hl = self._header(mv, n) if self.version == 0 else self._pv1(mv, n)
        self.hlen = hl
        self.truncated = n < hl
        if self.type == TYPE_MGMT and n >= hl:
            self._management(mv, hl)

    def _header(self, mv: memoryview, n: int) -> int:
        """Read the addresses and control fields this type has; the header's length."""
        typ, sub, flags = self.type, self.subtype, self.flags or 0

        def addr(off: int) -> bytes | None:
            return bytes(mv[off : off + 6]) if n >= off + 6 else None

        self.addr1 = addr(4)
        if typ == TYPE_CONTROL:
            if sub in (CTS, ACK, CTL_WRAPPER):
                return 10
            self.addr2 = addr(10)
            return 16
        self.addr2, self.addr3 = addr(10), addr(16)
        self.seq_ctrl = _H.unpack_from(mv, 22)[0] if n >= 24 else None
        hl = 24
        if typ == TYPE_DATA:
            if flags & FLAG_TODS and flags & FLAG_FROMDS:
                self.addr4 = addr(24)
                hl = 30
            if sub & 8:  # QoS data subtypes
                self.qos = _H.unpack_from(mv, hl)[0] if n >= hl + 2 else None
                hl += 2
                if flags & FLAG_ORDER:
                    self.htc = _I.unpack_from(mv, hl)[0] if n >= hl + 4 else None
                    hl += 4
        elif typ == TYPE_MGMT and flags & FLAG_ORDER:
            self.htc = _I.unpack_from(mv, hl)[0] if n >= hl + 4 else None
            hl += 4
        return hl

    def _pv1(self, mv: memoryview, n: int) -> int:
        """Protocol version 1 (802.11ah short frames): only the receiver address is read;
        versions 2 and 3 are not defined (nothing is read)."""
        self.duration = None
        if self.version == 1:
            self.addr1 = bytes(mv[2:8]) if n >= 8 else None
        return min(n, 8)

    def _management(self, mv: memoryview, hl: int) -> None:
        spec = _FIXED.get(self.subtype)
        if spec is None:  # action frames and the rest: the category, then raw bytes
            if self.subtype in (ACTION, ACTION_NOACK) and len(mv) > hl:
                self.fixed = {"category": mv[hl]}
            return
        names, st = spec
        if len(mv) < hl + st.size:
            self.truncated = True
            return
        self.fixed = dict(zip(names, st.unpack_from(mv, hl), strict=True))
        items, trouble = walk(mv, hl + st.size, len(mv), _eid_head, 2)
        self.elements = tuple(items)
        if trouble == TRUNCATED:
            self.truncated = True
        elif trouble == MALFORMED:
            self.malformed = True

    # ---- frame control ----

    @property
    def version(self) -> int | None:
        return None if self.fc0 is None else self.fc0 & 3

    @property
    def type(self) -> int | None:
        return None if self.fc0 is None else self.fc0 >> 2 & 3

    @property
    def subtype(self) -> int | None:
        return None if self.fc0 is None else self.fc0 >> 4

    @property
    def fc(self) -> int | None:
        """As Wireshark shows it: version 0 byte 0 << 8 | flags; version 1 little-endian."""
        if self.flags is None or self.fc0 is None:
            return None
        if self.version == 1:
            return self.flags << 8 | self.fc0
        return self.fc0 << 8 | self.flags

    @property
    def tods(self) -> bool:
        return bool((self.flags or 0) & FLAG_TODS)

    @property
    def fromds(self) -> bool:
        return bool((self.flags or 0) & FLAG_FROMDS)

    @property
    def protected(self) -> bool:
        return bool((self.flags or 0) & FLAG_PROTECTED)

    @property
    def seq(self) -> int | None:
        return None if self.seq_ctrl is None else self.seq_ctrl >> 4

    @property
    def frag(self) -> int | None:
        return None if self.seq_ctrl is None else self.seq_ctrl & 15

    # ---- address roles (as Wireshark names them) ----

    def roles(self) -> dict[str, bytes | None]:
        """ra, ta, da, sa, bssid: which address plays which role (absent roles left out)."""
        a1, a2, a3, a4 = self.addr1, self.addr2, self.addr3, self.addr4
        typ, sub = self.type, self.subtype
        if typ in (TYPE_MGMT, TYPE_DATA) and (a3 is None or (
                typ == TYPE_DATA and self.tods and self.fromds and a4 is None)):
            return {"ra": a1} if a1 is not None else {}  # header cut short: as Wireshark
        if typ == TYPE_CONTROL:
            if sub in (CTS, ACK, CTL_WRAPPER):
                return {"ra": a1}
            if sub == PS_POLL:
                return {"bssid": a1, "ta": a2}
            if sub in (CF_END, CF_END_ACK):
                return {"ra": a1, "bssid": a2}
            return {"ra": a1, "ta": a2}
        if typ == TYPE_MGMT:
            return {"ra": a1, "da": a1, "ta": a2, "sa": a2, "bssid": a3}
        if typ == TYPE_DATA:
            ds = (self.flags or 0) & 3
            if ds == 0:
                return {"ra": a1, "da": a1, "ta": a2, "sa": a2, "bssid": a3}
            if ds == FLAG_TODS:
                return {"ra": a1, "bssid": a1, "ta": a2, "sa": a2, "da": a3}
            if ds == FLAG_FROMDS:
                return {"ra": a1, "da": a1, "ta": a2, "bssid": a2, "sa": a3}
            return {"ra": a1, "ta": a2, "da": a3, "sa": a4}
        return {"ra": a1}

    @property
    def ssid(self) -> bytes | None:
        for e in self.elements:
            if e.type == EID_SSID:
                return e.value
        return None

    # ---- what follows ----

    @property
    def header_len(self) -> int:
        return self.hlen

    @property
    def payload(self) -> memoryview:
        hl = min(self.hlen, len(self.buf))
        return self.buf[hl:]

    @property
    def next_key(self) -> str | None:
        """Data frames with a body: "llc" ("data" when protected or an A-MSDU); other
        frames end the walk."""
        if self.version or self.type != TYPE_DATA or self.subtype is None or self.subtype & 4:
            return None  # not data, or a null-function subtype (no body)
        if self.protected or (self.qos is not None and self.qos & 0x80):
            return "data"  # encrypted, or an A-MSDU: not decoded further
        return "llc"

    def fields(self) -> dict[str, Any]:
        if self.version:
            if self.version == 1:
                return {"fc": self.fc, "version": 1, "ra": self.addr1}
            return {"version": self.version}
        d: dict[str, Any] = {"fc": self.fc, "version": self.version, "type": self.type,
                             "subtype": self.subtype, "flags": self.flags,
                             "duration": self.duration}
        d.update(self.roles())
        d.update(addr1=self.addr1, addr2=self.addr2, addr3=self.addr3, addr4=self.addr4,
                 seq=self.seq, frag=self.frag, qos=self.qos, htc=self.htc)
        if self.type == TYPE_MGMT:
            d["ssid"] = self.ssid
            d["fixed"] = self.fixed
            d["elements"] = [{"id": e.type, "length": self.buf[e.offset + 1], "value": e.value}
                             for e in self.elements]
        return {k: v for k, v in d.items() if v is not None or k in _ALWAYS}


_ALWAYS = frozenset(("fc", "version", "type", "subtype", "flags", "duration"))
