"""Netlink messages: ``nlmsghdr`` (host byte order) and the attribute TLV tree.

    nl = Netlink(payload, family=0)          # every message in one record
    for m in nl.messages:                    # tuple[NlMsg, ...]
        m.len, m.type, m.flags, m.seq, m.pid # ints (nlmsg_*)
        m.offset                             # where the message starts in the record
        m.body                               # memoryview of the bytes after nlmsghdr
        m.attrs                              # tuple[NlAttr, ...] after the family's fixed
                                             # header (empty if that size is unknown)
    parse_attrs(buf, start, end)             # the TLV walk itself, for any family

An :class:`NlAttr` keeps its type number (flags stripped), the NLA_F_NESTED
and NLA_F_NET_BYTEORDER bits, its offset, its length and its raw value bytes;
``children`` holds the nested attributes when NLA_F_NESTED is set (or after
:meth:`NlAttr.nested`, which tries to read any value as a nested list).
Nothing here knows what an attribute means: the netlink analysis does.

``byteorder`` is ``"="`` (this machine) by default: netlink headers are in the
byte order of the host that captured them; pass ``"<"`` or ``">"`` to read a
capture made on another kind of machine. Lengths past the end of the record
set ``truncated``; lengths below the header size set ``malformed``.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from rawlab.decode.view import Buffer, View, as_view

NLMSG_HDRLEN = 16
NLA_HDRLEN = 4
NLA_F_NESTED = 0x8000
NLA_F_NET_BYTEORDER = 0x4000
NLA_TYPE_MASK = 0x3FFF
MAX_DEPTH = 8

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
NLMSG_MIN_TYPE = 0x10

NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_ECHO = 0x08
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP_FILTERED = 0x20
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_ATOMIC = 0x400
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200

NETLINK_ROUTE = 0
NETLINK_USERSOCK = 2
NETLINK_SOCK_DIAG = 4
NETLINK_NFLOG = 5
NETLINK_XFRM = 6
NETLINK_AUDIT = 9
NETLINK_FIB_LOOKUP = 10
NETLINK_NETFILTER = 12
NETLINK_GENERIC = 16

_SCHEMAS: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """The construct schemas (NLMSGHDR, NLATTR, NLMSGERR), built on first use.

    Importing construct costs ~13 ms; the hot paths (dumps, the monitor) read
    headers with :mod:`struct` and never need it.
    """
    if name not in ("NLMSGHDR", "NLATTR", "NLMSGERR"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if not _SCHEMAS:
        from construct import Bytes, Int16un, Int32sn, Int32un, Struct

        hdr = Struct("len" / Int32un, "type" / Int16un, "flags" / Int16un,
                     "seq" / Int32un, "pid" / Int32un)
        _SCHEMAS["NLMSGHDR"] = hdr
        _SCHEMAS["NLATTR"] = Struct("nla_len" / Int16un, "nla_type" / Int16un,
                                    "value" / Bytes(lambda c: max(c.nla_len - NLA_HDRLEN, 0)))
        _SCHEMAS["NLMSGERR"] = Struct("error" / Int32sn, "msg" / hdr)
    return _SCHEMAS[name]


# Size of the fixed family header between nlmsghdr and the attributes, for the
# rtnetlink message types (RTM_NEW*/DEL*/GET*/SET* come in groups of four).
_RTM_FIXED: dict[int, int] = {}
for _base, _size in (
    (16, 16),   # LINK: ifinfomsg
    (20, 8),    # ADDR: ifaddrmsg
    (24, 12),   # ROUTE: rtmsg
    (28, 12),   # NEIGH: ndmsg
    (32, 12),   # RULE: fib_rule_hdr
    (36, 20), (40, 20), (44, 20),  # QDISC, TCLASS, TFILTER: tcmsg
    (48, 4),    # ACTION: tcamsg
    (52, 12),   # PREFIX: prefixmsg
    (56, 8), (60, 8),  # MULTICAST, ANYCAST: ifaddrmsg
    (64, 4),    # NEIGHTBL: ndtmsg
    (68, 16),   # NDUSEROPT: nduseroptmsg
    (72, 12),   # ADDRLABEL: ifaddrlblmsg
    (76, 4),    # DCB: dcbmsg
    (80, 4),    # NETCONF: netconfmsg
    (84, 8),    # MDB: br_port_msg
    (88, 4),    # NSID: rtgenmsg (padded)
    (92, 12),   # STATS: if_stats_msg
    (96, 4),    # CACHEREPORT
    (100, 20),  # CHAIN: tcmsg
    (104, 8),   # NEXTHOP: nhmsg
    (108, 16),  # LINKPROP: ifinfomsg
    (112, 8),   # VLAN: br_vlan_msg
    (116, 8),   # NEXTHOPBUCKET: nhmsg
    (120, 8),   # TUNNEL: tunnel_msg
):
    for _t in range(_base, _base + 4):
        _RTM_FIXED[_t] = _size


def fixed_header_len(family: int | None, msg_type: int) -> int | None:
    """Bytes of family header before the attributes, or None when unknown here."""
    if msg_type < NLMSG_MIN_TYPE:
        return None
    if family == NETLINK_ROUTE:
        return _RTM_FIXED.get(msg_type)
    if family == NETLINK_GENERIC:
        return 4  # genlmsghdr
    if family == NETLINK_NETFILTER:
        return 4  # nfgenmsg
    return None


class NlAttr:
    """One attribute of the TLV tree (never raises; lengths checked when parsed)."""

    __slots__ = (
        "children",
        "data",
        "length",
        "malformed",
        "nested_flag",
        "net_byteorder",
        "offset",
        "truncated",
        "type",
    )

    def __init__(self, type_: int, offset: int, length: int, data: bytes, *,
                 truncated: bool = False, malformed: bool = False) -> None:
        self.type = type_ & NLA_TYPE_MASK
        self.nested_flag = bool(type_ & NLA_F_NESTED)
        self.net_byteorder = bool(type_ & NLA_F_NET_BYTEORDER)
        self.offset = offset
        self.length = length
        self.data = data
        self.truncated = truncated
        self.malformed = malformed
        self.children: tuple[NlAttr, ...] | None = None

    def nested(self, base: int | None = None, byteorder: str = "=") -> tuple[NlAttr, ...] | None:
        """Read the value as nested attributes; None if it does not parse cleanly."""
        if self.children is not None:
            return self.children
        start = self.offset + NLA_HDRLEN if base is None else base
        attrs, trunc, bad = parse_attrs(self.data, 0, len(self.data), start, byteorder)
        if trunc or bad:
            return None
        self.children = attrs
        return attrs

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "offset": self.offset, "length": self.length,
                             "nested": self.nested_flag, "data": self.data}
        if self.children is not None:
            d["children"] = [c.as_dict() for c in self.children]
        return d

    def __repr__(self) -> str:
        kids = f" children={len(self.children)}" if self.children is not None else ""
        return f"<NlAttr type={self.type} len={self.length} @{self.offset}{kids}>"


def parse_attrs(buf: Buffer, start: int, end: int, base: int = 0, byteorder: str = "=",
                depth: int = 0) -> tuple[tuple[NlAttr, ...], bool, bool]:
    """Walk the TLVs in ``buf[start:end]``; returns (attrs, truncated, malformed).

    Offsets are ``base + position in buf``. Nested attributes (NLA_F_NESTED)
    are walked too, down to ``MAX_DEPTH`` levels.
    """
    mv = as_view(buf)
    hdr = struct.Struct(byteorder + "HH")
    out: list[NlAttr] = []
    trunc = bad = False
    end = min(end, len(mv))
    pos = start
    while pos + NLA_HDRLEN <= end:
        ln, typ = hdr.unpack_from(mv, pos)
        if ln < NLA_HDRLEN:
            bad = True
            out.append(NlAttr(typ, base + pos, ln, bytes(mv[pos + NLA_HDRLEN : end]),
                              malformed=True))
            break
        if pos + ln > end:
            trunc = True
            out.append(NlAttr(typ, base + pos, ln, bytes(mv[pos + NLA_HDRLEN : end]),
                              truncated=True))
            break
        a = NlAttr(typ, base + pos, ln, bytes(mv[pos + NLA_HDRLEN : pos + ln]))
        if a.nested_flag and depth < MAX_DEPTH:
            kids, kt, kb = parse_attrs(mv, pos + NLA_HDRLEN, pos + ln, base, byteorder, depth + 1)
            a.children = kids
            a.truncated, a.malformed = kt, kb
            bad = bad or kb or kt
        out.append(a)
        pos += (ln + 3) & ~3
    if 0 < end - pos < NLA_HDRLEN:
        bad = True  # leftover bytes too short for an attribute header
    return tuple(out), trunc, bad


class NlMsg:
    """One netlink message inside a record."""

    __slots__ = ("_attrs", "buf", "byteorder", "family", "flags", "len", "malformed", "offset",
                 "pid", "seq", "truncated", "type")

    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("len", 0, 4), ("type", 4, 2), ("flags", 6, 2), ("seq", 8, 4), ("pid", 12, 4),
    )

    def __init__(self, buf: memoryview, offset: int, family: int | None, byteorder: str) -> None:
        self.buf = buf
        self.offset = offset
        self.family = family
        self.byteorder = byteorder
        self.len, self.type, self.flags, self.seq, self.pid = struct.unpack_from(
            byteorder + "IHHII", buf, offset)
        self.malformed = self.len < NLMSG_HDRLEN
        self.truncated = offset + self.len > len(buf)
        self._attrs: tuple[NlAttr, ...] | None = None

    @property
    def end(self) -> int:
        return min(self.offset + max(self.len, NLMSG_HDRLEN), len(self.buf))

    @property
    def body(self) -> memoryview:
        return self.buf[self.offset + NLMSG_HDRLEN : self.end]

    @property
    def error(self) -> int | None:
        """The (negative errno) of an NLMSG_ERROR, 0 for an ACK."""
        if self.type == NLMSG_ERROR and len(self.body) >= 4:
            return struct.unpack_from(self.byteorder + "i", self.body)[0]
        return None

    @property
    def attrs(self) -> tuple[NlAttr, ...]:
        if self._attrs is None:
            fixed = fixed_header_len(self.family, self.type)
            if fixed is None:
                self._attrs = ()
            else:
                start = self.offset + NLMSG_HDRLEN + fixed
                attrs, trunc, bad = parse_attrs(self.buf, start, self.end, 0, self.byteorder)
                self._attrs = attrs
                self.truncated = self.truncated or trunc
                self.malformed = self.malformed or bad
        return self._attrs

    def fields(self) -> dict[str, Any]:
        return {"len": self.len, "type": self.type, "flags": self.flags, "seq": self.seq,
                "pid": self.pid}

    def __repr__(self) -> str:
        return f"<NlMsg @{self.offset} {self.fields()}>"


class Netlink(View):
    """Every netlink message in one captured record (NLMSG_ALIGNed one after another)."""

    __slots__ = ("byteorder", "family", "messages")
    name: ClassVar[str] = "netlink"

    def __init__(self, buf: Buffer, family: int | None = None, byteorder: str = "=") -> None:
        self.buf = mv = as_view(buf)
        self.family = family
        self.byteorder = byteorder
        self.truncated = self.malformed = False
        msgs: list[NlMsg] = []
        pos, n = 0, len(mv)
        while pos < n:
            if pos + NLMSG_HDRLEN > n:
                self.truncated = True
                break
            m = NlMsg(mv, pos, family, byteorder)
            msgs.append(m)
            if m.malformed or m.truncated:
                self.malformed |= m.malformed
                self.truncated |= m.truncated
                break
            pos += (m.len + 3) & ~3
        self.messages = tuple(msgs)

    @property
    def header_len(self) -> int:
        return len(self.buf)

    def fields(self) -> dict[str, Any]:
        return {"family": self.family, "messages": [m.fields() for m in self.messages]}
