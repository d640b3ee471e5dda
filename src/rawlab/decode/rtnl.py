"""rtnetlink messages: names and attribute types, from a snapshot of pyroute2's nla maps.

    msgs = decode_buffer(buf)              # every message of one datagram / record
    m = msgs[0]                            # NlMsg (rawlab.sockets.netlink_wire), decoded
    m.type, m.flags, m.seq, m.pid          # nlmsghdr (ints)
    m.header                               # {"family": 2, "dst_len": 24, ...} (pyroute2 names)
    m.attrs                                # {"RTA_TABLE": 254, "RTA_DST": IpAddr(b"..."), ...}
    type_name(24)                          # "RTM_NEWROUTE"
    decode(m)                              # fill one message the wire walk yielded

The framing (nlmsghdr, nlattr, NLMSG_ERROR and its extended ACK) is
:mod:`rawlab.sockets.netlink_wire`'s; this module reads what rtnetlink puts in
it. :data:`FAMILY_HEADERS` is the one message type -> family header table
(pyroute2's ``MarshalRtnl.msg_map``); pyroute2's ``ifinfmsg``, ``ifaddrmsg``,
``rtmsg``, ``ndmsg``, ``fibmsg``, ``nsidmsg``... classes give each attribute its
name and type, but importing pyroute2 is slow (bench/README.md):
:mod:`rawlab.decode.rtnl_maps_gen` compiles their ``nla_map`` once, ahead of
time, into the plain data of :mod:`rawlab.decode.rtnl_maps`, and this module
never imports pyroute2. The snapshot is read the first time a message is
decoded; a :class:`Schema` (one map: attribute number -> :class:`AttrSpec`) is
built the first time it is used.

Values stay ints, ``str`` (interface names) and bytes: addresses are
:class:`IpAddr` / :class:`MacAddr` (bytes subclasses), opaque payloads
:class:`HexBytes`, fixed C structs dicts of ints, nested attributes dicts.
An attribute no map names survives as :class:`Unknown` (number + raw bytes).
An attribute that repeats (IFLA_ALT_IFNAME, IFLA_VF_INFO ...) becomes a list.
Messages of other netlink families keep their attributes by number.
Only :mod:`rawlab.present.netlink` turns any of this into text.

Decoding never raises on bad input: a length past the end or below 4 stops
the walk and sets ``truncated`` / ``malformed`` on the message.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from rawlab.sockets.netlink_wire import (
    NETLINK_GENERIC,
    NETLINK_NETFILTER,
    NETLINK_ROUTE,
    NLA_F_NESTED,
    NLA_TYPE_MASK,
    NLATTR,
    NLMSG_HDRLEN,
    NLMSG_MIN_TYPE,
    NlMsg,
    messages,
)

MAX_DEPTH = 8

# attribute kinds (how a value is read)
K_INT, K_STR, K_IP, K_MAC, K_HEX, K_FLAG, K_NONE, K_NEST, K_STRUCT, K_DYN, K_U32ARRAY, \
    K_MULTIPATH, K_VIA = range(13)

NLMSG_NAMES = {1: "NLMSG_NOOP", 2: "NLMSG_ERROR", 3: "NLMSG_DONE", 4: "NLMSG_OVERRUN"}

# ---- message type -> family header (pyroute2's MarshalRtnl.msg_map) -------------------

# The family header between nlmsghdr and the attributes: its C struct (pyroute2's
# class in brackets where the name differs) and size, by the first of the four
# message types of each object (NEW, DEL, GET, SET: ``mtype & ~3``).
FAMILY_HEADERS: dict[int, tuple[str, int]] = {
    16: ("ifinfomsg", 16),  # LINK [ifinfmsg]
    20: ("ifaddrmsg", 8),  # ADDR
    24: ("rtmsg", 12),  # ROUTE
    28: ("ndmsg", 12),  # NEIGH
    32: ("fib_rule_hdr", 12),  # RULE [fibmsg]
    36: ("tcmsg", 20), 40: ("tcmsg", 20), 44: ("tcmsg", 20),  # QDISC, TCLASS, TFILTER
    48: ("tcamsg", 4),  # ACTION
    52: ("prefixmsg", 12),  # PREFIX
    56: ("ifaddrmsg", 8), 60: ("ifaddrmsg", 8),  # MULTICAST, ANYCAST
    64: ("ndtmsg", 4),  # NEIGHTBL
    68: ("nduseroptmsg", 16),  # NDUSEROPT
    72: ("ifaddrlblmsg", 12),  # ADDRLABEL
    76: ("dcbmsg", 4),  # DCB
    80: ("netconfmsg", 4),  # NETCONF
    84: ("br_port_msg", 8),  # MDB
    88: ("rtgenmsg", 4),  # NSID (padded) [nsidmsg]
    92: ("if_stats_msg", 12),  # STATS
    96: ("rtgenmsg", 4),  # CACHEREPORT
    100: ("tcmsg", 20),  # CHAIN
    104: ("nhmsg", 8),  # NEXTHOP
    108: ("ifinfomsg", 16),  # LINKPROP
    112: ("br_vlan_msg", 8),  # VLAN
    116: ("nhmsg", 8),  # NEXTHOPBUCKET
    120: ("tunnel_msg", 8),  # TUNNEL
}
GENLMSGHDR_LEN = 4  # generic netlink: cmd, version, reserved
NFGENMSG_LEN = 4  # netfilter: family, version, res_id


def fixed_header_len(protocol: int | None, mtype: int) -> int | None:
    """Bytes of family header before the attributes, or None when unknown here."""
    if mtype < NLMSG_MIN_TYPE:
        return None
    if protocol == NETLINK_ROUTE:
        h = FAMILY_HEADERS.get(mtype & ~3)
        return h[1] if h is not None else None
    if protocol == NETLINK_GENERIC:
        return GENLMSGHDR_LEN
    if protocol == NETLINK_NETFILTER:
        return NFGENMSG_LEN
    return None


_NH = struct.Struct("=HBBi").unpack_from  # struct rtnexthop
_NLATTR = NLATTR.unpack_from


class IpAddr(bytes):
    """An IPv4 / IPv6 address (4 or 16 bytes; present/ writes it as text)."""

    __slots__ = ()


class MacAddr(bytes):
    """A link-layer address."""

    __slots__ = ()


class HexBytes(bytes):
    """An opaque payload (present/ writes it as hex)."""

    __slots__ = ()


class Unknown:
    """An attribute no map names: its number and its raw bytes."""

    __slots__ = ("data", "nested", "type")

    def __init__(self, type_: int, data: bytes, nested: bool = False) -> None:
        self.type = type_
        self.data = data
        self.nested = nested

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Unknown) and self.type == other.type
                and self.data == other.data)

    def __hash__(self) -> int:
        return hash((self.type, self.data))

    def __repr__(self) -> str:
        return f"Unknown(type={self.type}, data={self.data.hex()})"


class Via:
    """RTA_VIA: an address family and an address."""

    __slots__ = ("addr", "family")

    def __init__(self, family: int, addr: bytes) -> None:
        self.family = family
        self.addr = addr

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Via) and (self.family, self.addr) == (other.family, other.addr)

    def __hash__(self) -> int:
        return hash((self.family, self.addr))


# ---- schemas, read from the snapshot --------------------------------------------

class AttrSpec:
    """How to read one attribute: its name, its kind and what the kind needs."""

    __slots__ = ("kind", "name", "st", "sub")

    def __init__(self, name: str, kind: int, st: struct.Struct | None = None,
                 sub: Any = None) -> None:
        self.name = name
        self.kind = kind
        self.st = st  # K_INT: the Struct of the value
        # K_NEST / K_MULTIPATH: a Schema (a schema id until first used);
        # K_STRUCT: [(field, Struct, offset), ...]; K_DYN: the choices (or None)
        self.sub = sub

    def schema(self) -> Schema:
        """K_NEST: the nested attributes' schema; K_MULTIPATH: each next hop's."""
        sub = self.sub
        if not isinstance(sub, Schema):
            sub = self.sub = _schema(sub)
        return sub

    def choose(self, family: int, siblings: dict[str, Any]) -> AttrSpec | None:
        """K_DYN: how to read this value, chosen by family or by a sibling's value."""
        sub = self.sub
        if sub is None:
            return None
        if not isinstance(sub, _Choices):
            names, table = sub
            sub = self.sub = _Choices(names, {key: _attr(self.name, kind, arg)
                                              for key, (kind, arg) in table.items()})
        return sub.pick(family, siblings)


class _Choices:
    """A K_DYN attribute's specs by key: the first true sibling value, or the family."""

    __slots__ = ("by_key", "names")

    def __init__(self, names: tuple[str, ...], by_key: dict[Any, AttrSpec]) -> None:
        self.names = names
        self.by_key = by_key

    def pick(self, family: int, siblings: dict[str, Any]) -> AttrSpec | None:
        if not self.names:
            return self.by_key.get(family)
        key = None
        for name in self.names:
            key = siblings.get(name)
            if key:
                break
        if not isinstance(key, str | int):
            return None  # e.g. a repeated IFLA_INFO_KIND (a list): no one class to choose
        return self.by_key.get(key)


class Schema:
    """One ``nla_map``: attribute number -> :class:`AttrSpec`."""

    __slots__ = ("by_type", "name", "prefix")

    def __init__(self, name: str, by_type: dict[int, AttrSpec], prefix: str = "") -> None:
        self.name = name
        self.by_type = by_type
        self.prefix = prefix

    def pyroute2_name(self, name: str) -> str:
        """pyroute2's short name (``RTA_DST`` -> ``dst``), as ``msg.get("dst")`` takes it."""
        if self.prefix and name.startswith(self.prefix):
            return name[len(self.prefix):].lower()
        return name.lower()


EMPTY = Schema("empty", {})
_SCHEMAS: dict[int, Schema] = {}
_STRUCTS: dict[str, struct.Struct] = {}


def _st(fmt: str) -> struct.Struct:
    st = _STRUCTS.get(fmt)
    if st is None:
        st = _STRUCTS[fmt] = struct.Struct(fmt)
    return st


def _fields(flat: tuple[Any, ...]) -> list[tuple[str, struct.Struct, int]]:
    """C struct fields from the snapshot's (field, format, offset, field...)."""
    it = iter(flat)
    return [(name, _st(fmt), off) for name, fmt, off in zip(it, it, it, strict=True)]


def _attr(name: str, kind: int, arg: Any) -> AttrSpec:
    """One attribute of the snapshot: (kind, arg) as rtnl_maps describes them."""
    if kind == K_INT:
        return AttrSpec(name, kind, _st(arg))
    if kind == K_STRUCT:
        return AttrSpec(name, kind, sub=_fields(arg))
    return AttrSpec(name, kind, sub=arg)  # a schema id, the K_DYN choices, or None


def _schema(sid: int) -> Schema:
    """Schema ``sid`` of the snapshot, built on first use (its nested ones stay ids)."""
    s = _SCHEMAS.get(sid)
    if s is None:
        from rawlab.decode.rtnl_maps import SCHEMAS

        key, prefix, attrs = SCHEMAS[sid]
        it = iter(attrs)
        by_type = {num: _attr(name, kind, arg)
                   for num, name, kind, arg in zip(it, it, it, it, strict=True)}
        s = _SCHEMAS[sid] = Schema(key.rpartition(".")[2], by_type, prefix)
    return s


# ---- values ---------------------------------------------------------------------

def _struct(spec: list[tuple[str, struct.Struct, int]], data: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n = len(data)
    for name, st, off in spec:
        if off + st.size > n:
            break
        v = st.unpack_from(data, off)[0]
        out[name] = HexBytes(v) if isinstance(v, bytes) else v
    return out


def _multipath(data: bytes, schema: Schema, family: int, depth: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pos, n = 0, len(data)
    while pos + 8 <= n:
        ln, flags, hops, oif = _NH(data, pos)
        if ln < 8:
            break
        end = min(pos + ln, n)
        attrs, _ok = decode_attrs(data, pos + 8, end, schema, family, depth + 1)
        out.append({"flags": flags, "hops": hops, "oif": oif, "attrs": attrs})
        pos += (ln + 3) & ~3
    return out


def value_of(spec: AttrSpec, data: bytes, family: int = 0,
             siblings: dict[str, Any] | None = None, depth: int = 0,
             nested_flag: bool = False) -> Any:
    """One attribute's value, read as its spec says (never raises)."""
    k = spec.kind
    if k == K_INT:
        st = spec.st
        return st.unpack_from(data)[0] if st is not None and len(data) >= st.size \
            else HexBytes(data)
    if k == K_STR:
        return data.partition(b"\0")[0].decode("utf-8", "replace")
    if k == K_IP:
        return IpAddr(data)
    if k == K_MAC:
        return MacAddr(data)
    if k == K_FLAG:
        return True
    if k == K_NONE:
        return HexBytes(data) if data else None
    if k == K_NEST:
        if depth >= MAX_DEPTH:
            return HexBytes(data)
        return decode_attrs(data, 0, len(data), spec.schema(), family, depth + 1)[0]
    if k == K_STRUCT:
        return _struct(spec.sub, data)
    if k == K_U32ARRAY:
        return list(struct.unpack_from(f"={len(data) // 4}I", data))
    if k == K_MULTIPATH:
        return _multipath(data, spec.schema(), family, depth)
    if k == K_VIA:
        if len(data) >= 2:
            return Via(struct.unpack_from("=H", data)[0], data[2:])
        return HexBytes(data)
    if k == K_DYN:
        chosen = spec.choose(family, siblings or {})
        if chosen is not None and depth < MAX_DEPTH:
            return value_of(chosen, data, family, siblings, depth, nested_flag)
        if nested_flag and depth < MAX_DEPTH:
            return decode_attrs(data, 0, len(data), EMPTY, family, depth + 1)[0]
    return HexBytes(data)


def decode_attrs(buf: bytes, pos: int, end: int, schema: Schema, family: int = 0,
                 depth: int = 0) -> tuple[dict[str, Any], bool]:
    """The attributes in ``buf[pos:end]`` (``end <= len(buf)``) as {name: value}; returns
    (attrs, walked cleanly).

    The hot path of dumps and the monitor. It walks the TLVs as
    :func:`rawlab.sockets.netlink_wire.attributes` does (a truncated attribute
    keeps what there is of its value, a malformed one ends the walk), inline:
    a generator per message costs 17% of decoding a dump of 20,000 routes.
    ``tests/unit/test_netlink_wire.py`` holds the two walks to the same result.
    Common kinds are read inline, the rest through :func:`value_of`.
    """
    out: dict[str, Any] = {}
    get = schema.by_type.get
    hh = _NLATTR
    ok = True
    while pos + 4 <= end:  # NLA_HDRLEN, as a literal: a global costs 4% here
        ln, atype = hh(buf, pos)
        if ln < 4:
            ok = False  # malformed: the walk ends
            break
        nxt = pos + ln
        if nxt > end:
            ok = False  # truncated: what there is
            nxt = end
        t = atype & NLA_TYPE_MASK
        spec = get(t)
        p = pos + 4
        if spec is None:
            key: str = str(t)
            val: Any = Unknown(t, buf[p:nxt], bool(atype & NLA_F_NESTED))
        else:
            key = spec.name
            k = spec.kind
            if k == K_INT:
                st = spec.st
                val = st.unpack_from(buf, p)[0] if nxt - p >= st.size \
                    else HexBytes(buf[p:nxt])  # type: ignore[union-attr]
            elif k == K_IP:
                val = IpAddr(buf[p:nxt])
            elif k == K_STR:
                val = buf[p:nxt].partition(b"\0")[0].decode("utf-8", "replace")
            else:
                val = value_of(spec, buf[p:nxt], family, out, depth,
                               bool(atype & NLA_F_NESTED))
        if key in out:
            old = out[key]
            if type(old) is _Repeated:
                old.append(val)
            else:
                out[key] = _Repeated((old, val))
        else:
            out[key] = val
        pos = (nxt + 3) & ~3
    if pos < end:
        ok = False  # leftover bytes, too few for a header
    return out, ok


class _Repeated(list):  # type: ignore[type-arg]
    """The values of an attribute that appeared more than once, in order."""

    __slots__ = ()


# ---- messages -------------------------------------------------------------------

class MsgType:
    """What a message type is: its name, its fixed header and its attribute schema."""

    __slots__ = ("header_fields", "header_len", "header_spec", "header_st", "name", "schema")

    def __init__(self, name: str, header_fields: tuple[str, ...],
                 header_st: struct.Struct | None, header_len: int, schema: Schema,
                 header_spec: list[tuple[str, struct.Struct, int]] | None = None) -> None:
        self.name = name
        self.header_spec = header_spec or []  # (name, Struct, offset) of each header field
        self.header_fields = header_fields
        self.header_st = header_st
        self.header_len = header_len
        self.schema = schema


_TYPES: dict[int, MsgType] = {}
_NAMES: dict[int, str] = {}


def _rtm_names() -> dict[int, str]:
    if not _NAMES:
        from rawlab.decode.rtnl_maps import NAMES

        _NAMES.update(NAMES)
    return _NAMES


def type_name(mtype: int, protocol: int | None = NETLINK_ROUTE) -> str:
    """``RTM_NEWROUTE`` for 24, ``NLMSG_ERROR`` for 2 in any family; else the number as text.

    The one naming of netlink message types: ``rawlab read`` and ``rawlab netlink``
    print what this returns.
    """
    if protocol != NETLINK_ROUTE and mtype >= NLMSG_MIN_TYPE:
        return str(mtype)
    return (_NAMES or _rtm_names()).get(mtype) or str(mtype)


def msg_type(mtype: int) -> MsgType:
    """The :class:`MsgType` of an rtnetlink message type (built on first use)."""
    t = _TYPES.get(mtype)
    if t is None:
        t = _TYPES[mtype] = _build_type(mtype)
    return t


def _build_type(mtype: int) -> MsgType:
    from rawlab.decode.rtnl_maps import HEADERS, TYPES

    name = type_name(mtype)
    fixed = fixed_header_len(NETLINK_ROUTE, mtype) or 0
    sid = TYPES.get(mtype)
    if sid is None:
        return MsgType(name, (), None, fixed, EMPTY)
    fields, fmt, spec = HEADERS[sid]
    st = _st(fmt) if fmt is not None else None
    return MsgType(name, fields, st, max(fixed, st.size if st else 0), _schema(sid),
                   _fields(spec))


def decode(m: NlMsg, types: Callable[[int], MsgType] | None = None) -> NlMsg:
    """Fill ``header``, ``family`` and ``attrs`` of a message the wire walk yielded.

    rtnetlink (``m.protocol`` 0): names from the snapshot, or from ``types``
    (message type -> :class:`MsgType`; :mod:`rawlab.decode.rtnl_maps_gen` passes
    its live pyroute2 compile). Generic netlink and netfilter: attributes by
    number after their 4-byte header. Bad attributes set ``malformed``.
    """
    if m.type < NLMSG_MIN_TYPE or m.malformed:
        return m
    buf, body, end = m.buf, m.offset + NLMSG_HDRLEN, m.end
    if m.protocol != NETLINK_ROUTE:
        fixed = fixed_header_len(m.protocol, m.type)
        if fixed is not None:
            m.attrs, ok = decode_attrs(buf, body + fixed, end, EMPTY, 0)
            m.malformed = not (ok or m.truncated)
        return m
    t = (_TYPES.get(m.type) or msg_type(m.type)) if types is None else types(m.type)
    st = t.header_st
    if st is not None and body + st.size <= end:
        m.header = hdr = dict(zip(t.header_fields, st.unpack_from(buf, body), strict=False))
        m.family = hdr.get("family")
    elif t.header_len and body + t.header_len > end:
        m.malformed = not m.truncated
        return m
    m.attrs, ok = decode_attrs(buf, body + t.header_len, end, t.schema, m.family or 0)
    m.malformed = not (ok or m.truncated)
    return m


def decode_message(buf: bytes, off: int, protocol: int | None = NETLINK_ROUTE, *,
                   types: Callable[[int], MsgType] | None = None) -> tuple[NlMsg, int]:
    """The message at ``buf[off]`` (``off + 16 <= len(buf)``), decoded; returns it and
    where the next one starts (-1: stop). ``types``: as :func:`decode`."""
    m = next(messages(buf, off, protocol))
    return decode(m, types), m.next_offset


# ---- dumps ---------------------------------------------------------------------

# the header fields and attributes the user-space dump filter reads
FILTER_FIELDS = frozenset({"table", "index", "ifindex", "RTA_TABLE", "RTA_OIF", "FRA_TABLE"})


def dump_filter(kind: str, *, strict: bool, family: int = 0, table: int | None = None,
                ifindex: int | None = None) -> Callable[[NlMsg], bool] | None:
    """What the kernel did not filter (rule tables; everything without strict checking),
    as a predicate on decoded messages; None when it filtered all. It reads only
    ``family`` and :data:`FILTER_FIELDS`."""
    if kind != "rules" and strict:
        return None

    def wanted(m: NlMsg) -> bool:
        if family and m.family != family:
            return False
        a, h = m.attrs, m.header
        if kind == "routes":
            t = a.get("RTA_TABLE", h.get("table"))
            return (not table or t == table) and (not ifindex or a.get("RTA_OIF") == ifindex)
        if kind == "rules":
            return not table or a.get("FRA_TABLE", h.get("table")) == table
        if kind == "addrs":
            return not ifindex or h.get("index") == ifindex
        if kind == "neigh":
            return not ifindex or h.get("ifindex") == ifindex
        return True

    return wanted


def decode_dump(bufs: Iterable[bytes]) -> Iterator[NlMsg]:
    """The rtnetlink messages (type >= 16) of a dump's buffers, decoded, as they arrive."""
    for buf in bufs:
        for m in decode_buffer(buf):
            if m.type >= NLMSG_MIN_TYPE:
                yield m


def decode_buffer(buf: bytes | bytearray | memoryview, protocol: int | None = NETLINK_ROUTE, *,
                  types: Callable[[int], MsgType] | None = None) -> list[NlMsg]:
    """Every message in one datagram or captured record, decoded (never raises).

    The common case (a whole rtnetlink message of a known type) is read inline;
    the rest goes through :func:`decode`. ``types``: as there.
    """
    if not isinstance(buf, bytes):
        buf = bytes(buf)
    out: list[NlMsg] = []
    append = out.append
    lookup = _TYPES.get if types is None else types
    attrs = decode_attrs
    route = protocol == NETLINK_ROUTE
    try:
        for m in messages(buf, 0, protocol):
            append(m)
            t = lookup(m.type) if route else None
            body = m.offset + NLMSG_HDRLEN
            end = m.offset + m.len
            if t is None or m.truncated or m.malformed or t.header_st is None \
                    or body + t.header_len > end:
                decode(m, types)
                continue
            # the hot path: pairing header names and values with strict= costs 5% here
            m.header = h = dict(zip(t.header_fields, t.header_st.unpack_from(buf, body)))  # noqa: B905
            m.family = fam = h.get("family")
            m.attrs, ok = attrs(buf, body + t.header_len, end, t.schema, fam or 0)
            if not ok:
                m.malformed = True
    except Exception:  # a map we cannot follow: the bytes survive in the views
        if out:
            out[-1].malformed = True
    return out
