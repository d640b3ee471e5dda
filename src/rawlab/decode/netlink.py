"""Netlink records (link type NETLINK, 253): every message, and the attribute tree for -v.

    nl = Netlink(payload, family=0)          # every message in one record
    for m in nl.messages:                    # tuple[NlMsg, ...] (rawlab.sockets.netlink_wire)
        m.len, m.type, m.flags, m.seq, m.pid # ints (nlmsg_*)
        m.offset                             # where the message starts in the record
        m.header, m.attrs                    # decoded by the family (decode.rtnl): names
    attr_tree(m)                             # tuple[NlAttr, ...]: the TLVs after the family
                                             # header, with offsets (empty if that size is
                                             # unknown)
    parse_attrs(buf, start, end)             # the TLV tree of any bytes
    nlmon_record(record)                     # (protocol, pkttype, netlink bytes) of a record

The framing is :mod:`rawlab.sockets.netlink_wire`'s and the naming
:mod:`rawlab.decode.rtnl`'s; this module is the per-packet view the dissector
(decode.dispatch) uses. An :class:`NlAttr` keeps its type number (flags
stripped), the NLA_F_NESTED and NLA_F_NET_BYTEORDER bits, its offset, its length
and its raw value bytes; ``children`` holds the nested attributes when
NLA_F_NESTED is set (or after :meth:`NlAttr.nested`, which tries to read any
value as a nested list).

``byteorder`` is ``"="`` (this machine) by default: netlink headers are in the
byte order of the host that captured them; pass ``"<"`` or ``">"`` to read a
capture made on another kind of machine (then only nlmsghdr and the tree are
read, not the family's names). Lengths past the end of the record set
``truncated``; lengths below the header size set ``malformed``.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar, NamedTuple

from rawlab.decode.rtnl import decode_buffer, fixed_header_len
from rawlab.decode.view import Buffer, View, as_view
from rawlab.sockets.netlink_wire import (
    ATTR_LEFTOVER,
    ATTR_MALFORMED,
    ATTR_TRUNCATED,
    NLA_F_NESTED,
    NLA_F_NET_BYTEORDER,
    NLA_HDRLEN,
    NLA_TYPE_MASK,
    NLMSG_HDRLEN,
    NlMsg,
    attributes,
    messages,
)

MAX_DEPTH = 8

_SCHEMAS: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """The construct schemas (NLMSGHDR, NLATTR, NLMSGERR), built on first use.

    Importing construct is slow (bench/README.md); the hot paths (dumps, the monitor) read
    headers with :mod:`struct` and never need it. Tests hold the wire walk to them.
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
    """The TLV tree in ``buf[start:end]``; returns (attrs, truncated, malformed).

    Offsets are ``base + position in buf``. Nested attributes (NLA_F_NESTED)
    are walked too, down to ``MAX_DEPTH`` levels.
    """
    mv = as_view(buf)
    out: list[NlAttr] = []
    trunc = bad = False
    for atype, p, q in attributes(mv, start, end, byteorder):
        if atype & ATTR_LEFTOVER:
            bad = True
            break
        at = p - NLA_HDRLEN
        if atype & (ATTR_TRUNCATED | ATTR_MALFORMED):
            trunc, bad = bool(atype & ATTR_TRUNCATED), bool(atype & ATTR_MALFORMED)
            length = struct.unpack_from(byteorder + "H", mv, at)[0]
            out.append(NlAttr(atype, base + at, length, bytes(mv[p:q]), truncated=trunc,
                              malformed=bad))
            break
        a = NlAttr(atype, base + at, q - at, bytes(mv[p:q]))
        if a.nested_flag and depth < MAX_DEPTH:
            kids, kt, kb = parse_attrs(mv, p, q, base, byteorder, depth + 1)
            a.children = kids
            a.truncated, a.malformed = kt, kb
            bad = bad or kb or kt
        out.append(a)
    return tuple(out), trunc, bad


def attr_tree(m: NlMsg, byteorder: str = "=") -> tuple[NlAttr, ...]:
    """The attribute tree after ``m``'s family header, offsets from the start of ``m.buf``.

    Empty when the family header's size is not known here (or for NLMSG_ERROR/DONE).
    """
    fixed = fixed_header_len(m.protocol, m.type)
    if fixed is None:
        return ()
    return parse_attrs(m.buf, m.offset + NLMSG_HDRLEN + fixed, m.end, 0, byteorder)[0]


class Netlink(View):
    """Every netlink message in one captured record (NLMSG_ALIGNed one after another).

    ``family`` is the netlink protocol (the cooked header's protocol field);
    with this machine's byte order the messages are decoded by their family
    (decode.rtnl: names for NETLINK_ROUTE), as ``rawlab netlink decode`` does.
    """

    __slots__ = ("byteorder", "family", "messages")
    name: ClassVar[str] = "netlink"

    def __init__(self, buf: Buffer, family: int | None = None, byteorder: str = "=") -> None:
        self.buf = mv = as_view(buf)
        self.family = family
        self.byteorder = byteorder
        if byteorder == "=":
            msgs = decode_buffer(mv, family)
        else:
            msgs = list(messages(mv, 0, family, byteorder))
        self.messages = tuple(msgs)
        self.malformed = any(m.malformed for m in msgs)
        # the last message is cut short, or bytes too few for a header follow it
        end = msgs[-1].next_offset if msgs else 0
        self.truncated = any(m.truncated for m in msgs) or 0 <= end < len(mv)

    @property
    def header_len(self) -> int:
        return len(self.buf)

    def fields(self) -> dict[str, Any]:
        return {"family": self.family, "messages": [m.fields() for m in self.messages]}


class NetlinkRecord(NamedTuple):
    """One captured record of netlink messages, as `rawlab netlink decode` reads it."""

    frame: int  # its number in the file (1 for hex input)
    ts_ns: int | None
    protocol: int  # the netlink family; -1 when unknown
    pkttype: int  # from the cooked header; -1 when unknown
    data: bytes  # the netlink messages


def nlmon_record(data: Buffer) -> tuple[int, int, Buffer]:
    """(netlink protocol, pkttype, the netlink bytes) of a LINKTYPE_NETLINK record.

    Its 16-byte cooked header (rawlab.decode.sll) holds both; ``(-1, -1, data)``
    when the record is shorter than that header.
    """
    from rawlab.decode.sll import SLL_HLEN, Sll

    if len(data) < SLL_HLEN:
        return -1, -1, data
    h = Sll(data)
    return h.protocol, h.pkttype, data[SLL_HLEN:]
