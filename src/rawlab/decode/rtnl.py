"""rtnetlink messages: names and attribute types, from a snapshot of pyroute2's nla maps.

    msgs = decode_buffer(buf)              # every message of one datagram / record
    m = msgs[0]                            # RtMsg
    m.type, m.flags, m.seq, m.pid          # nlmsghdr (ints)
    m.header                               # {"family": 2, "dst_len": 24, ...} (pyroute2 names)
    m.attrs                                # {"RTA_TABLE": 254, "RTA_DST": IpAddr(b"..."), ...}
    type_name(24)                          # "RTM_NEWROUTE"

pyroute2's ``ifinfmsg``, ``ifaddrmsg``, ``rtmsg``, ``ndmsg``, ``fibmsg``,
``nsidmsg``... classes give each attribute its name and type, but importing
pyroute2 costs ~110 ms: :mod:`rawlab.decode.rtnl_maps_gen` compiles their
``nla_map`` once, ahead of time, into the plain data of
:mod:`rawlab.decode.rtnl_maps`, and this module never imports pyroute2. The
snapshot is read the first time a message is decoded; a :class:`Schema` (one
map: attribute number -> :class:`AttrSpec`) is built the first time it is used.

Values stay ints, ``str`` (interface names) and bytes: addresses are
:class:`IpAddr` / :class:`MacAddr` (bytes subclasses), opaque payloads
:class:`HexBytes`, fixed C structs dicts of ints, nested attributes dicts.
An attribute no map names survives as :class:`Unknown` (number + raw bytes).
An attribute that repeats (IFLA_ALT_IFNAME, IFLA_VF_INFO ...) becomes a list.
Only :mod:`rawlab.present.netlink` turns any of this into text.

The walk never raises on bad input: a length past the end or below 4 stops
the walk and sets ``truncated`` / ``malformed`` on the message.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from rawlab.decode.netlink import (
    NETLINK_ROUTE,
    NLA_TYPE_MASK,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_HDRLEN,
    NLMSG_MIN_TYPE,
    fixed_header_len,
)

MAX_DEPTH = 8

# attribute kinds (how a value is read)
K_INT, K_STR, K_IP, K_MAC, K_HEX, K_FLAG, K_NONE, K_NEST, K_STRUCT, K_DYN, K_U32ARRAY, \
    K_MULTIPATH, K_VIA = range(13)

NLMSG_NAMES = {1: "NLMSG_NOOP", 2: "NLMSG_ERROR", 3: "NLMSG_DONE", 4: "NLMSG_OVERRUN"}

_HH = struct.Struct("=HH").unpack_from
_NLMSGHDR = struct.Struct("=IHHII").unpack_from
_I32 = struct.Struct("=i").unpack_from
_NH = struct.Struct("=HBBi").unpack_from  # struct rtnexthop


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
    """The TLVs in ``buf[pos:end]`` as {name: value}; returns (attrs, walked cleanly).

    The hot path of dumps and the monitor: one ``unpack`` per attribute, common
    kinds read inline, the rest through :func:`value_of`.
    """
    out: dict[str, Any] = {}
    table = schema.by_type
    hh = _HH
    ok = True
    while pos + 4 <= end:
        ln, typ = hh(buf, pos)
        if ln < 4:
            ok = False
            break
        nxt = pos + ln
        if nxt > end:
            ok = False
            nxt = end
        t = typ & NLA_TYPE_MASK
        spec = table.get(t)
        p = pos + 4
        if spec is None:
            key: str = str(t)
            val: Any = Unknown(t, buf[p:nxt], bool(typ & 0x8000))
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
                val = value_of(spec, buf[p:nxt], family, out, depth, bool(typ & 0x8000))
        if key in out:
            old = out[key]
            if type(old) is _Repeated:
                old.append(val)
            else:
                out[key] = _Repeated((old, val))
        else:
            out[key] = val
        pos = (nxt + 3) & ~3
    if 0 < end - pos < 4:
        ok = False
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


def type_name(mtype: int) -> str:
    """``RTM_NEWROUTE`` for 24; the number as text when no name is known."""
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


class RtMsg:
    """One decoded netlink message (rtnetlink names when the family is ROUTE)."""

    __slots__ = (
        "attrs",
        "buf",
        "error",
        "extack",
        "family",
        "flags",
        "header",
        "len",
        "offset",
        "ok",
        "pid",
        "seq",
        "type",
    )

    def __init__(self, mtype: int, flags: int, seq: int, pid: int, length: int,
                 offset: int) -> None:
        self.type = mtype
        self.flags = flags
        self.seq = seq
        self.pid = pid
        self.len = length
        self.offset = offset
        self.buf = b""  # the datagram / record it came from (for -v layouts)
        self.family: int | None = None
        self.header: dict[str, int] = {}
        self.attrs: dict[str, Any] = {}
        self.ok = True
        self.error: int | None = None
        self.extack: str | None = None

    @property
    def name(self) -> str:
        return type_name(self.type)

    def __repr__(self) -> str:
        return f"<RtMsg {self.name} seq={self.seq} pid={self.pid} {self.header} {self.attrs}>"


def decode_message(buf: bytes, off: int, protocol: int = NETLINK_ROUTE, *,
                   types: Callable[[int], MsgType] | None = None) -> tuple[RtMsg, int]:
    """The message at ``buf[off]``; returns it and where the next one starts (-1: stop).

    ``types``: message type -> :class:`MsgType`, :func:`msg_type` (the snapshot)
    unless given (:mod:`rawlab.decode.rtnl_maps_gen` passes its live pyroute2 compile).
    """
    n = len(buf)
    length, mtype, flags, seq, pid = _NLMSGHDR(buf, off)
    m = RtMsg(mtype, flags, seq, pid, length, off)
    m.buf = buf
    if length < NLMSG_HDRLEN:
        m.ok = False
        return m, -1
    end = off + length
    nxt = off + ((length + 3) & ~3)
    if end > n:
        m.ok = False
        end, nxt = n, -1
    body = off + NLMSG_HDRLEN
    if mtype < NLMSG_MIN_TYPE:
        if mtype == NLMSG_ERROR and end - body >= 4:
            m.error = _I32(buf, body)[0]
            m.extack = _extack(buf, body, end, flags)
        elif mtype == NLMSG_DONE and end - body >= 4:
            m.error = _I32(buf, body)[0]
        return m, nxt
    if protocol != NETLINK_ROUTE:
        fixed = fixed_header_len(protocol, mtype)
        if fixed is not None:
            m.attrs, m.ok = decode_attrs(buf, body + fixed, end, EMPTY, 0)
        return m, nxt
    t = (_TYPES.get(mtype) or msg_type(mtype)) if types is None else types(mtype)
    st = t.header_st
    if st is not None and body + st.size <= end:
        vals = st.unpack_from(buf, body)
        m.header = hdr = dict(zip(t.header_fields, vals, strict=False))
        m.family = hdr.get("family")
    elif t.header_len and body + t.header_len > end:
        m.ok = False
        return m, nxt
    m.attrs, m.ok = decode_attrs(buf, body + t.header_len, end, t.schema, m.family or 0)
    return m, nxt


def _extack(buf: bytes, body: int, end: int, flags: int) -> str | None:
    if not flags & 0x200 or end - body < 4 + NLMSG_HDRLEN:  # NLM_F_ACK_TLVS
        return None
    orig_len = _NLMSGHDR(buf, body + 4)[0]
    pos = body + 4 + (NLMSG_HDRLEN if flags & 0x100 else (orig_len + 3) & ~3)  # CAPPED
    while pos + 4 <= end:
        ln, typ = _HH(buf, pos)
        if ln < 4:
            break
        if typ & NLA_TYPE_MASK == 1:  # NLMSGERR_ATTR_MSG
            return bytes(buf[pos + 4 : min(pos + ln, end)]).partition(b"\0")[0].decode(
                "utf-8", "replace")
        pos += (ln + 3) & ~3
    return None


def decode_buffer(buf: bytes | bytearray | memoryview, protocol: int = NETLINK_ROUTE, *,
                  types: Callable[[int], MsgType] | None = None) -> list[RtMsg]:
    """Every message in one datagram or captured record (never raises).

    The common case (a whole rtnetlink message of a known type) is read inline;
    the rest goes through :func:`decode_message`. ``types``: as there.
    """
    if not isinstance(buf, bytes):
        buf = bytes(buf)
    out: list[RtMsg] = []
    append = out.append
    off, n = 0, len(buf)
    hdr = _NLMSGHDR
    lookup = _TYPES.get if types is None else types
    attrs = decode_attrs
    route = protocol == NETLINK_ROUTE
    try:
        while off + NLMSG_HDRLEN <= n:
            length, mtype, flags, seq, pid = hdr(buf, off)
            end = off + length
            t = lookup(mtype) if route else None
            if t is None or length < NLMSG_HDRLEN or end > n or t.header_st is None \
                    or off + NLMSG_HDRLEN + t.header_len > end:
                m, off = decode_message(buf, off, protocol, types=types)
                append(m)
                if off < 0:
                    break
                continue
            m = RtMsg(mtype, flags, seq, pid, length, off)
            m.buf = buf
            body = off + NLMSG_HDRLEN
            m.header = h = dict(zip(t.header_fields, t.header_st.unpack_from(buf, body),
                                    strict=False))
            m.family = fam = h.get("family")
            m.attrs, m.ok = attrs(buf, body + t.header_len, end, t.schema, fam or 0)
            append(m)
            off += (length + 3) & ~3
    except Exception:  # a map we cannot follow: the bytes survive in the views
        if out:
            out[-1].ok = False
    return out
