"""DNS (RFC 1035, 3596, 2782, 6891), over UDP and over TCP (RFC 7766), mDNS (RFC 6762)
and LLMNR (RFC 4795): one message format.

    d = Dns(udp_payload)                     # or DnsTcp(segment bytes): 2-byte length first
    d.id, d.flags, d.qdcount, d.ancount, d.nscount, d.arcount     # ints, fixed header
    d.qr, d.opcode, d.aa, d.tc, d.rd, d.ra, d.z, d.ad, d.cd, d.rcode   # the flag bits
    d.questions      # tuple[DnsQuestion, ...] (parsed on first access of any section)
    d.answers, d.authorities, d.additionals      # tuple[DnsRR, ...]
    d.edns           # the OPT pseudo-record of the additional section, or None

A name is ``bytes``: its labels joined with ``b"."`` (the root is ``b""``), every
compression pointer followed; a pointer loop, a label over 63 bytes or a name over
255 bytes marks the message malformed (:data:`MAX_POINTERS` pointers at most).

Each :class:`DnsRR` keeps ``rdata`` (raw bytes) and ``data``, its value by type:
A/AAAA the address bytes; NS/CNAME/PTR/DNAME a name; MX ``(preference, exchange)``;
SOA ``(mname, rname, serial, refresh, retry, expire, minimum)``; TXT a tuple of
character-strings; SRV ``(priority, weight, port, target)``; OPT a tuple of
``(code, bytes)`` options; anything else (unknown types too) ``None``: ``rdata``
survives. ``truncated``: the counts or a length promise bytes the capture does not
hold. ``malformed``: the bytes contradict themselves (bad name, rdlength past a
value that cannot fit). Sections are read on first access; both marks are final
from then on (every presenter reads them first).
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar, NamedTuple

from construct import Int16ub, Struct

from rawlab.decode.view import AppView, Buffer, as_view, pad

DNS_HLEN = 12
MAX_POINTERS = 64
MAX_NAME = 255
MAX_RECORDS = 4096  # per section: a 64 KiB message holds fewer

PORT_DNS = 53
PORT_MDNS = 5353
PORT_LLMNR = 5355

# record types (IANA "Resource Record (RR) TYPEs")
T_A, T_NS, T_CNAME, T_SOA, T_PTR, T_MX, T_TXT, T_AAAA = 1, 2, 5, 6, 12, 15, 16, 28
T_SRV, T_DNAME, T_OPT = 33, 39, 41
TYPE_NAMES = {
    1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT",
    17: "RP", 18: "AFSDB", 24: "SIG", 25: "KEY", 28: "AAAA", 29: "LOC", 33: "SRV", 35: "NAPTR",
    36: "KX", 37: "CERT", 39: "DNAME", 41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP",
    45: "IPSECKEY", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 49: "DHCID", 50: "NSEC3",
    51: "NSEC3PARAM", 52: "TLSA", 53: "SMIMEA", 55: "HIP", 59: "CDS", 60: "CDNSKEY",
    61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS", 99: "SPF",
    249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR", 255: "ANY", 256: "URI", 257: "CAA",
}
CLASS_NAMES = {1: "IN", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
               5: "REFUSED", 6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH",
               10: "NOTZONE", 11: "DSOTYPENI", 16: "BADVERS", 17: "BADKEY", 18: "BADTIME",
               19: "BADMODE", 20: "BADNAME", 21: "BADALG", 22: "BADTRUNC", 23: "BADCOOKIE"}
OPCODE_NAMES = {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE", 6: "DSO"}
EDNS_OPTION_NAMES = {3: "NSID", 5: "DAU", 8: "CSUBNET", 9: "EXPIRE", 10: "COOKIE",
                     11: "TCP-KEEPALIVE", 12: "PADDING", 13: "CHAIN", 14: "KEY-TAG",
                     15: "EDE"}

DNS_HEADER = Struct(
    "id" / Int16ub, "flags" / Int16ub, "qdcount" / Int16ub, "ancount" / Int16ub,
    "nscount" / Int16ub, "arcount" / Int16ub,
)
_HDR = struct.Struct("!HHHHHH")
_QTAIL = struct.Struct("!HH")
_RRTAIL = struct.Struct("!HHIH")
_H = struct.Struct("!H")
_SOA = struct.Struct("!IIIII")
_SRV = struct.Struct("!HHH")

# the status of a parse step
OK, SHORT, BAD = 0, 1, 2


def read_name(msg: memoryview | bytes, off: int) -> tuple[bytes, int, int]:
    """``(name, offset after it, status)`` of the name at ``off`` of ``msg`` (the whole
    message: pointers count from its start). Status OK, SHORT (the capture ends
    inside it) or BAD (pointer loop or too many pointers, reserved label type, over
    255 bytes); what was read before a problem is returned."""
    labels: list[bytes] = []
    n = len(msg)
    end = -1
    hops = 0
    total = 0
    visited: set[int] = set()
    while True:
        if off >= n:
            return b".".join(labels), (end if end >= 0 else n), SHORT
        c = msg[off]
        if c == 0:
            return b".".join(labels), (end if end >= 0 else off + 1), OK
        kind = c & 0xC0
        if kind == 0xC0:
            if off + 1 >= n:
                return b".".join(labels), (end if end >= 0 else n), SHORT
            if end < 0:
                end = off + 2
            ptr = (c & 0x3F) << 8 | msg[off + 1]
            hops += 1
            if ptr in visited or hops > MAX_POINTERS:
                return b".".join(labels), end, BAD
            visited.add(off)
            off = ptr
            continue
        if kind:  # 0x40 (extended label types, RFC 6891: retired) and 0x80 (reserved)
            return b".".join(labels), (end if end >= 0 else off + 1), BAD
        total += c + 1
        if total > MAX_NAME:
            return b".".join(labels), (end if end >= 0 else off + 1 + c), BAD
        label = bytes(msg[off + 1 : off + 1 + c])
        labels.append(label)
        if len(label) < c:
            return b".".join(labels), (end if end >= 0 else n), SHORT
        off += 1 + c


class DnsQuestion(NamedTuple):
    name: bytes
    type: int
    cls: int  # mDNS: the top bit asks for a unicast response (QU)
    offset: int  # of the name, from the start of the message


class DnsRR(NamedTuple):
    name: bytes
    type: int
    cls: int  # OPT: the requestor's UDP payload size; mDNS: top bit is cache-flush
    ttl: int  # OPT: extended RCODE << 24 | version << 16 | DO << 15 | Z
    rdlength: int
    rdata: bytes
    data: Any  # the value by type (module docstring), None when not decoded
    offset: int  # of the name, from the start of the message


def _rdata(msg: memoryview, rtype: int, start: int, end: int) -> tuple[Any, int]:
    """(value, status) of the rdata ``msg[start:end]`` (complete: end <= len(msg))."""
    size = end - start
    if rtype in (T_A, T_AAAA):
        want = 4 if rtype == T_A else 16
        return (bytes(msg[start:end]), OK) if size == want else (None, BAD)
    if rtype in (T_NS, T_CNAME, T_PTR, T_DNAME):
        return _name_in(msg, start, end)
    if rtype == T_MX:
        if size < 3:
            return None, BAD
        exch, st = _name_in(msg, start + 2, end)
        return (_H.unpack_from(msg, start)[0], exch), st
    if rtype == T_SRV:
        if size < 7:
            return None, BAD
        target, st = _name_in(msg, start + 6, end)
        return (*_SRV.unpack_from(msg, start), target), st
    if rtype == T_SOA:
        mname, o, st1 = read_name(msg, start)
        rname, o, st2 = read_name(msg, o)
        if max(st1, st2) or o + 20 > end:
            return None, BAD
        return (mname, rname, *_SOA.unpack_from(msg, o)), OK
    if rtype == T_TXT:
        return _strings(msg, start, end)
    if rtype == T_OPT:
        return _options(msg, start, end)
    return None, OK


def _name_in(msg: memoryview, start: int, end: int) -> tuple[bytes | None, int]:
    name, o, st = read_name(msg, start)
    if st or o > end:
        return (name if not st else None), BAD
    return name, OK


def _strings(msg: memoryview, start: int, end: int) -> tuple[tuple[bytes, ...], int]:
    out = []
    o = start
    while o < end:
        ln = msg[o]
        if o + 1 + ln > end:
            return tuple(out), BAD
        out.append(bytes(msg[o + 1 : o + 1 + ln]))
        o += 1 + ln
    return tuple(out), OK


def _options(msg: memoryview, start: int, end: int) -> tuple[tuple[tuple[int, bytes], ...], int]:
    out = []
    o = start
    while o < end:
        if o + 4 > end:
            return tuple(out), BAD
        code, ln = _QTAIL.unpack_from(msg, o)
        if o + 4 + ln > end:
            return tuple(out), BAD
        out.append((code, bytes(msg[o + 4 : o + 4 + ln])))
        o += 4 + ln
    return tuple(out), OK


class Dns(AppView):
    """One DNS message (module docstring). Sections are parsed on first access."""

    __slots__ = ("_sections", "ancount", "arcount", "flags", "id", "msg", "nscount", "qdcount")
    name: ClassVar[str] = "dns"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("id", 0, 2), ("flags", 2, 2), ("qdcount", 4, 2), ("ancount", 6, 2),
        ("nscount", 8, 2), ("arcount", 10, 2),
    )
    PREFIX: ClassVar[int] = 0  # bytes before the message (TCP's length field)

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        p = self.PREFIX
        self.msg = msg = mv[p:]
        hdr, trunc = pad(msg, DNS_HLEN)
        (self.id, self.flags, self.qdcount, self.ancount, self.nscount,
         self.arcount) = _HDR.unpack_from(hdr)
        self.truncated = trunc or len(mv) < p
        self.malformed = False
        self._sections: tuple[tuple[DnsQuestion, ...], tuple[DnsRR, ...],
                              tuple[DnsRR, ...], tuple[DnsRR, ...]] | None = None
        #: ((frame, bytes), ...) of the TCP segments a reassembled message came in
        self.frames: tuple[tuple[int, int], ...] = ()


    # the flag bits (RFC 1035 4.1.1, RFC 2535 AD/CD)
    @property
    def qr(self) -> int:
        return self.flags >> 15

    @property
    def opcode(self) -> int:
        return self.flags >> 11 & 0xF

    @property
    def aa(self) -> int:
        return self.flags >> 10 & 1

    @property
    def tc(self) -> int:
        return self.flags >> 9 & 1

    @property
    def rd(self) -> int:
        return self.flags >> 8 & 1

    @property
    def ra(self) -> int:
        return self.flags >> 7 & 1

    @property
    def z(self) -> int:
        return self.flags >> 6 & 1

    @property
    def ad(self) -> int:
        return self.flags >> 5 & 1

    @property
    def cd(self) -> int:
        return self.flags >> 4 & 1

    @property
    def rcode(self) -> int:
        """The header's RCODE (an OPT record may extend it: :attr:`full_rcode`)."""
        return self.flags & 0xF

    @property
    def full_rcode(self) -> int:
        e = self.edns
        return self.rcode | ((e.ttl >> 24) << 4 if e is not None else 0)

    @property
    def questions(self) -> tuple[DnsQuestion, ...]:
        return self._parse()[0]

    @property
    def answers(self) -> tuple[DnsRR, ...]:
        return self._parse()[1]

    @property
    def authorities(self) -> tuple[DnsRR, ...]:
        return self._parse()[2]

    @property
    def additionals(self) -> tuple[DnsRR, ...]:
        return self._parse()[3]

    @property
    def edns(self) -> DnsRR | None:
        for rr in self.additionals:
            if rr.type == T_OPT:
                return rr
        return None

    def _parse(self) -> tuple[tuple[DnsQuestion, ...], tuple[DnsRR, ...], tuple[DnsRR, ...],
                              tuple[DnsRR, ...]]:
        if self._sections is None:
            self._sections = self._walk()
        return self._sections

    def _walk(self) -> tuple[tuple[DnsQuestion, ...], tuple[DnsRR, ...], tuple[DnsRR, ...],
                             tuple[DnsRR, ...]]:
        msg = self.msg
        n = len(msg)
        off = DNS_HLEN
        status = OK if n >= DNS_HLEN else SHORT
        qs: list[DnsQuestion] = []
        for _ in range(min(self.qdcount, MAX_RECORDS)):
            if status:
                break
            name, o, st = read_name(msg, off)
            if st == BAD and o + 4 <= n:  # a broken name: the question is kept (as tshark)
                qs.append(DnsQuestion(name, *_QTAIL.unpack_from(msg, o), off))
            if st or o + 4 > n:
                status = st or SHORT
                break
            qtype, qclass = _QTAIL.unpack_from(msg, o)
            qs.append(DnsQuestion(name, qtype, qclass, off))
            off = o + 4
        sections: list[tuple[DnsRR, ...]] = []
        for count in (self.ancount, self.nscount, self.arcount):
            rrs: list[DnsRR] = []
            for _ in range(min(count, MAX_RECORDS)):
                if status:
                    break
                rr, off, status = self._rr(off)
                if rr is not None:
                    rrs.append(rr)
            sections.append(tuple(rrs))
        if status == SHORT:
            self.truncated = True
        elif status == BAD:
            self.malformed = True
        return tuple(qs), sections[0], sections[1], sections[2]

    def _rr(self, off: int) -> tuple[DnsRR | None, int, int]:
        msg = self.msg
        n = len(msg)
        name, o, st = read_name(msg, off)
        if st:
            return None, o, st
        if o + 10 > n:
            return None, n, SHORT
        rtype, rclass, ttl, rdlen = _RRTAIL.unpack_from(msg, o)
        start = o + 10
        end = start + rdlen
        if end > n:  # the value is cut short: keep what was captured
            return DnsRR(name, rtype, rclass, ttl, rdlen, bytes(msg[start:n]), None, off), n, SHORT
        data, st = _rdata(msg, rtype, start, end)
        return DnsRR(name, rtype, rclass, ttl, rdlen, bytes(msg[start:end]), data, off), end, st

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        d.update(questions=self.questions, answers=self.answers,
                 authorities=self.authorities, additionals=self.additionals)
        return d


class Mdns(Dns):
    """Multicast DNS (UDP 5353): DNS messages; class top bits are QU / cache-flush."""

    __slots__ = ()
    name: ClassVar[str] = "mdns"


class Llmnr(Dns):
    """Link-Local Multicast Name Resolution (UDP/TCP 5355): DNS's format."""

    __slots__ = ()
    name: ClassVar[str] = "llmnr"


class DnsTcp(Dns):
    """DNS over TCP: a 2-byte length, then one message (RFC 7766 8)."""

    __slots__ = ("length",)
    name: ClassVar[str] = "dns"
    PREFIX: ClassVar[int] = 2
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("length", 0, 2), *((n, o + 2, s) for n, o, s in Dns.FIELDS))

    def __init__(self, buf: Buffer) -> None:
        mv = as_view(buf)
        self.length = (mv[0] << 8 | mv[1]) if len(mv) >= 2 else 0
        super().__init__(mv[: 2 + self.length])
        if len(mv) < 2 + self.length:
            self.truncated = True

    @staticmethod
    def pdu_len(data: memoryview | bytes) -> int:
        """Bytes of the message at the start of ``data`` (length field included): 0 while
        the length field itself is not there yet."""
        return 2 + (data[0] << 8 | data[1]) if len(data) >= 2 else 0
