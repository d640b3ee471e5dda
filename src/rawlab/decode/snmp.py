"""SNMP (RFC 1157, 3416; v3 header, RFC 3412) over BER, read leniently.

    s = Snmp(udp_payload)
    s.version            # 0 v1, 1 v2c, 3 v3 (None: no INTEGER where it belongs)
    s.community          # bytes (v1/v2c), None for v3
    s.pdu_type           # the PDU's context tag number: 0 get-request ... 8 report
    s.request_id, s.error_status, s.error_index    # ints (get-bulk: non-repeaters,
                                                   # max-repetitions in the last two)
    s.varbinds           # tuple[(oid: tuple[int, ...], tag: int, value), ...]
    s.trap               # v1 trap: (enterprise oid, agent address, generic, specific,
                         #           timestamp)
    s.msg_id, s.msg_max_size, s.msg_flags, s.security_model     # v3 header
    s.scoped_pdu_encrypted   # v3 with privacy: the encrypted scoped PDU's bytes

:func:`tlv` is the BER reader: one tag-length-value at an offset, definite lengths in
short or long form; a length past the bytes is a truncated element (its captured
part is still read), an indefinite or absurd length a malformed one. Values: INTEGER
and the unsigned application types as ints, OCTET STRING and unknown tags as bytes,
OBJECT IDENTIFIER as a tuple of ints, NULL and the v2 exceptions as None.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from rawlab.decode.view import AppView, Buffer, as_view

PORT_SNMP = 161
PORT_SNMP_TRAP = 162

# universal tags
INTEGER, OCTET_STRING, NULL, OID, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
# SNMP application tags (RFC 2578)
IPADDRESS, COUNTER32, GAUGE32, TIMETICKS, OPAQUE, COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
PDU_NAMES = {0: "get-request", 1: "get-next-request", 2: "get-response", 3: "set-request",
             4: "trap", 5: "getBulkRequest", 6: "informRequest", 7: "snmpV2-trap",
             8: "report"}
VERSION_NAMES = {0: "v1", 1: "v2c", 2: "v2u", 3: "v3"}
ERROR_NAMES = {0: "noError", 1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly",
               5: "genErr", 6: "noAccess", 7: "wrongType", 8: "wrongLength",
               9: "wrongEncoding", 10: "wrongValue", 11: "noCreation", 12: "inconsistentValue",
               13: "resourceUnavailable", 14: "commitFailed", 15: "undoFailed",
               16: "authorizationError", 17: "notWritable", 18: "inconsistentName"}
MAX_VARBINDS = 1024


class Tlv(NamedTuple):
    tag: int
    start: int  # of the value
    end: int  # of the value, by its length (may be past the captured bytes)
    status: int  # 0 good, 1 cut short by the capture, 2 malformed


def tlv(buf: memoryview | bytes, off: int) -> Tlv:
    """The BER element at ``off`` (one-byte tags: every tag SNMP uses)."""
    n = len(buf)
    if off + 2 > n:
        return Tlv(buf[off] if off < n else 0, n, n, 1)
    tag, ln = buf[off], buf[off + 1]
    o = off + 2
    if tag & 0x1F == 0x1F:  # high tag numbers: not in SNMP
        return Tlv(tag, o, n, 2)
    if ln & 0x80:
        k = ln & 0x7F
        if k == 0 or k > 4:  # indefinite (not allowed in SNMP) or absurd
            return Tlv(tag, o, n, 2)
        if o + k > n:
            return Tlv(tag, n, n, 1)
        ln = int.from_bytes(buf[o : o + k], "big")
        o += k
    end = o + ln
    return Tlv(tag, o, end, 1 if end > n else 0)


def integer(buf: memoryview | bytes, e: Tlv, signed: bool = True) -> int:
    return int.from_bytes(buf[e.start : min(e.end, len(buf))], "big", signed=signed) if (
        e.end > e.start) else 0


def oid(raw: bytes) -> tuple[int, ...]:
    """An OBJECT IDENTIFIER's arcs (the first byte holds two)."""
    arcs: list[int] = []
    v = 0
    for b in raw:
        v = v << 7 | b & 0x7F
        if not b & 0x80:
            arcs.append(v)
            v = 0
    if not arcs:
        return ()
    first = arcs[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    return (*head, *arcs[1:])


def value(buf: memoryview | bytes, e: Tlv) -> Any:
    raw = bytes(buf[e.start : min(e.end, len(buf))])
    t = e.tag
    if t == INTEGER:
        return int.from_bytes(raw, "big", signed=True) if raw else 0
    if t in (COUNTER32, GAUGE32, TIMETICKS, COUNTER64):
        return int.from_bytes(raw, "big") if raw else 0
    if t == OID:
        return oid(raw)
    if t in (NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW):
        return None
    return raw  # OCTET STRING, IpAddress (4 bytes), Opaque, unknown tags


class Varbind(NamedTuple):
    oid: tuple[int, ...]
    tag: int  # the value's BER tag
    value: Any


class Snmp(AppView):
    __slots__ = ("community", "error_index", "error_status", "msg_flags", "msg_id",
                 "msg_max_size", "pdu_type", "request_id", "scoped_pdu_encrypted",
                 "security_model", "trap", "varbinds", "version")
    name: ClassVar[str] = "snmp"

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        self.truncated = self.malformed = False
        self.version: int | None = None
        self.community: bytes | None = None
        self.pdu_type: int | None = None
        self.request_id = self.error_status = self.error_index = None
        self.msg_id = self.msg_max_size = self.msg_flags = self.security_model = None
        self.scoped_pdu_encrypted: bytes | None = None
        self.trap: tuple[Any, ...] | None = None
        self.varbinds: tuple[Varbind, ...] = ()
        self.frames = ()
        try:
            self._parse(mv)
        except (IndexError, ValueError):  # (a bound this reader missed: never raise)
            self.malformed = True

    def _mark(self, e: Tlv) -> bool:
        """Note ``e``'s status; True when reading may go on."""
        if e.status == 1:
            self.truncated = True
        elif e.status == 2:
            self.malformed = True
        return e.start < len(self.buf) or e.status == 0

    def _parse(self, mv: memoryview) -> None:
        top = tlv(mv, 0)
        if top.tag != SEQUENCE:
            self.malformed = True
            return
        if not self._mark(top):
            return
        e = tlv(mv, top.start)
        self._mark(e)
        if e.tag != INTEGER:
            self.malformed = True
            return
        self.version = integer(mv, e)
        if self.version == 3:
            self._v3(mv, e.end)
            return
        c = tlv(mv, e.end)
        if not self._mark(c) or c.tag != OCTET_STRING:
            self.malformed = self.malformed or c.tag != OCTET_STRING
            return
        self.community = bytes(mv[c.start : min(c.end, len(mv))])
        self._pdu(mv, c.end)

    def _v3(self, mv: memoryview, off: int) -> None:
        g = tlv(mv, off)  # msgGlobalData
        if not self._mark(g) or g.tag != SEQUENCE:
            return
        vals, _o = self._values(mv, g.start, 4)
        self.msg_id, self.msg_max_size, flags, self.security_model = vals
        self.msg_flags = flags[0] if isinstance(flags, bytes) and flags else None
        sp = tlv(mv, g.end)  # msgSecurityParameters (an OCTET STRING)
        self._mark(sp)
        sc = tlv(mv, sp.end)
        if not self._mark(sc):
            return
        if sc.tag == OCTET_STRING:  # encrypted scoped PDU
            self.scoped_pdu_encrypted = bytes(mv[sc.start : min(sc.end, len(mv))])
            return
        if sc.tag == SEQUENCE:  # contextEngineID, contextName, PDU
            _names, o = self._values(mv, sc.start, 2)
            self._pdu(mv, o)

    def _values(self, mv: memoryview, o: int, count: int) -> tuple[list[Any], int]:
        """``count`` elements in a row from ``o`` (their values), and where they end."""
        vals = []
        for _ in range(count):
            e = tlv(mv, o)
            self._mark(e)
            vals.append(value(mv, e))
            o = e.end
        return vals, o

    def _pdu(self, mv: memoryview, off: int) -> None:
        p = tlv(mv, off)
        if not self._mark(p):
            return
        if p.tag & 0xE0 != 0xA0:  # constructed, context-specific
            self.malformed = True
            return
        self.pdu_type = p.tag & 0x1F
        o = p.start
        if self.pdu_type == 4:  # v1 trap: enterprise, agent-addr, generic, specific, time
            vals, o = self._values(mv, o, 5)
            self.trap = tuple(vals)
        else:
            vals = []
            for _ in range(3):
                e = tlv(mv, o)
                self._mark(e)
                if e.tag != INTEGER:
                    self.malformed = True
                vals.append(integer(mv, e))
                o = e.end
            self.request_id, self.error_status, self.error_index = vals
        self.varbinds = self._varbinds(mv, o)

    def _varbinds(self, mv: memoryview, off: int) -> tuple[Varbind, ...]:
        lst = tlv(mv, off)
        if off >= len(mv) or not self._mark(lst) or lst.tag != SEQUENCE:
            return ()
        out: list[Varbind] = []
        o = lst.start
        stop = min(lst.end, len(mv))
        while o < stop and len(out) < MAX_VARBINDS:
            vb = tlv(mv, o)
            if not self._mark(vb) or vb.tag != SEQUENCE:
                self.malformed = self.malformed or vb.tag != SEQUENCE
                break
            k = tlv(mv, vb.start)
            v = tlv(mv, k.end)
            self._mark(k)
            self._mark(v)
            out.append(Varbind(value(mv, k) if k.tag == OID else (), v.tag, value(mv, v)))
            if vb.end <= o:
                break
            o = vb.end
        return tuple(out)


    def fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "version", "community", "msg_id", "msg_max_size", "msg_flags", "security_model",
            "pdu_type", "request_id", "error_status", "error_index", "trap", "varbinds")}
