"""rtnetlink messages: names and attribute types, taken from pyroute2's nla maps.

    msgs = decode_buffer(buf)              # every message of one datagram / record
    m = msgs[0]                            # RtMsg
    m.type, m.flags, m.seq, m.pid          # nlmsghdr (ints)
    m.header                               # {"family": 2, "dst_len": 24, ...} (pyroute2 names)
    m.attrs                                # {"RTA_TABLE": 254, "RTA_DST": IpAddr(b"..."), ...}
    type_name(24)                          # "RTM_NEWROUTE"

pyroute2 is read lazily, the first time a message type is decoded, never at
import: its ``ifinfmsg``, ``ifaddrmsg``, ``rtmsg``, ``ndmsg``, ``fibmsg``,
``nsidmsg``... classes give each attribute its name and type; a :class:`Schema`
compiles one class's ``nla_map`` into a table keyed by attribute number, once.

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

import re
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


# ---- schemas compiled from pyroute2 classes -------------------------------------

_PRIM_BY_NAME: dict[str, int] = {
    "ipaddr": K_IP, "ip4addr": K_IP, "ip6addr": K_IP, "target": K_IP, "ipXaddr": K_IP,
    "mpls_target": K_HEX,
    "l2addr": K_MAC, "lladdr": K_MAC,
    "asciiz": K_STR, "string": K_STR, "nul_string": K_STR,
    "hex": K_HEX, "cdata": K_HEX, "binary": K_HEX, "array": K_HEX,
    "flag": K_FLAG, "none": K_NONE,
    "array(uint32)": K_U32ARRAY,
    "rtvia": K_VIA,
}
_INT_FMT = re.compile(r"^[=<>!@]?[bBhHiIlLqQ]$")


class AttrSpec:
    """How to read one attribute: its name, its kind and what the kind needs."""

    __slots__ = ("kind", "name", "owner", "st", "sub", "tname")

    def __init__(self, name: str, kind: int, st: struct.Struct | None = None,
                 sub: Any = None, owner: Any = None, tname: str = "") -> None:
        self.name = name
        self.kind = kind
        self.st = st  # K_INT: the Struct of the value
        self.sub = sub  # K_NEST: a pyroute2 class (or Schema); K_STRUCT: field list
        self.owner = owner  # the class whose map holds this attribute (for K_DYN)
        self.tname = tname  # the pyroute2 type name

    def schema(self) -> Schema:
        sub = self.sub
        if not isinstance(sub, Schema):
            sub = self.sub = Schema.of(sub)
        return sub


class Schema:
    """One ``nla_map`` compiled: attribute number -> :class:`AttrSpec` (lazily, once)."""

    __slots__ = ("by_type", "cls", "name", "prefix")
    _cache: dict[Any, Schema] = {}  # noqa: RUF012 - class-wide cache by pyroute2 class

    def __init__(self, name: str, by_type: dict[int, AttrSpec], prefix: str = "",
                 cls: Any = None) -> None:
        self.name = name
        self.by_type = by_type
        self.prefix = prefix
        self.cls = cls

    @classmethod
    def of(cls, nla_cls: Any) -> Schema:
        s = cls._cache.get(nla_cls)
        if s is None:
            s = cls._cache[nla_cls] = _compile(nla_cls)
        return s

    def pyroute2_name(self, name: str) -> str:
        """pyroute2's short name (``RTA_DST`` -> ``dst``), as ``msg.get("dst")`` takes it."""
        if self.prefix and name.startswith(self.prefix):
            return name[len(self.prefix):].lower()
        return name.lower()


EMPTY = Schema("empty", {})
_S32 = struct.Struct("=i")
NETCONF = Schema("netconfmsg", {
    n: AttrSpec(name, K_INT, _S32) for n, name in enumerate(
        ("NETCONFA_UNSPEC", "NETCONFA_IFINDEX", "NETCONFA_FORWARDING", "NETCONFA_RP_FILTER",
         "NETCONFA_MC_FORWARDING", "NETCONFA_PROXY_NEIGH",
         "NETCONFA_IGNORE_ROUTES_WITH_LINKDOWN", "NETCONFA_INPUT", "NETCONFA_BC_FORWARDING"))
    if n}, "NETCONFA_")


def _fields_spec(fields: Any) -> list[tuple[str, struct.Struct, int]] | None:
    """A C struct's fields as (name, Struct, offset); None if a format is not fixed-size."""
    out: list[tuple[str, struct.Struct, int]] = []
    off = 0
    for f in fields:
        name, fmt = f[0], f[1]
        m = re.fullmatch(r"([=<>!@]?)(\d*)([a-zA-Z?])", fmt)
        if not m:
            return None
        order, count, code = m.groups()
        if code == "B" and count:  # "32B": a byte array
            code = "s"
        try:
            st = struct.Struct((order or "=") + count + code)
        except struct.error:
            return None
        if code != "x" and not name.startswith("__"):
            out.append((name, st, off))
        off += st.size
    return out


def _class_kind(tname: str, sub: Any) -> tuple[int, Any, struct.Struct | None]:
    """(kind, sub, Struct) for a pyroute2 attribute class."""
    for base in getattr(sub, "__mro__", ()):
        bname = base.__name__
        if bname in ("nla", "nla_base", "nlmsg_base"):
            break
        if bname in _PRIM_BY_NAME and not (bname == tname and getattr(sub, "nla_map", None)):
            return _PRIM_BY_NAME[bname], None, None
    if getattr(sub, "nla_map", None):
        return K_NEST, sub, None
    fields = getattr(sub, "fields", None) or ()
    if not fields:
        return K_NONE, None, None
    if len(fields) == 1 and fields[0][0] == "value":
        fmt = fields[0][1]
        if _INT_FMT.match(fmt):
            return K_INT, None, struct.Struct(fmt if fmt[0] in "=<>!@" else "=" + fmt)
        return K_HEX, None, None
    spec = _fields_spec(fields)
    if spec is None:
        return K_HEX, None, None
    return K_STRUCT, spec, None


def _compile(nla_cls: Any) -> Schema:
    by_type: dict[int, AttrSpec] = {}
    for pos, entry in enumerate(getattr(nla_cls, "nla_map", ()) or ()):
        if isinstance(entry[0], int):
            num, name, tname = entry[0], entry[1], entry[2]
        else:
            num, name, tname = pos, entry[0], entry[1]
        if num in by_type:
            continue
        by_type[num] = _spec(nla_cls, name, tname)
    prefix = getattr(nla_cls, "prefix", "") or ""
    schema = Schema(getattr(nla_cls, "__name__", "?"), by_type, prefix, nla_cls)
    fix = _OVERRIDES.get(schema.name)
    if fix:
        fix(schema)
    return schema


def _spec(owner: Any, name: str, tname: Any) -> AttrSpec:
    if not isinstance(tname, str):
        return AttrSpec(name, K_HEX, owner=owner)
    if tname in _PRIM_BY_NAME:
        return AttrSpec(name, _PRIM_BY_NAME[tname], owner=owner, tname=tname)
    if tname.startswith("*"):
        kind = K_MULTIPATH if tname == "*get_nh" else K_DYN
        return AttrSpec(name, kind, owner=owner, tname=tname.lstrip("*"))
    sub = getattr(owner, tname, None)
    if sub is None:
        return AttrSpec(name, K_HEX, owner=owner, tname=tname)
    if not isinstance(sub, type):  # a staticmethod choosing the class at run time
        return AttrSpec(name, K_DYN, owner=owner, tname=tname)
    kind, s, st = _class_kind(tname, sub)
    return AttrSpec(name, kind, st, s, owner, tname)


def _fix_af_spec_inet(schema: Schema) -> None:
    # IFLA_AF_SPEC/AF_INET holds nested IFLA_INET_CONF (a u32 array), not a struct
    conf = Schema("inet_conf", {1: AttrSpec("IFLA_INET_CONF", K_U32ARRAY)}, "IFLA_INET_")
    schema.by_type[2] = AttrSpec("AF_INET", K_NEST, sub=conf)


_OVERRIDES: dict[str, Callable[[Schema], None]] = {"af_spec_inet": _fix_af_spec_inet}


def _dynamic(spec: AttrSpec, family: int, siblings: dict[str, Any]) -> Any:
    """The class a pyroute2 staticmethod would choose (by family or by a sibling's value)."""
    owner = spec.owner
    t = spec.tname
    if t == "info_data":
        return owner.data_map.get(siblings.get("IFLA_INFO_KIND"))
    if t == "info_slave_data":
        kind = siblings.get("IFLA_INFO_SLAVE_KIND") or siblings.get("IFLA_INFO_KIND")
        return {"bridge": owner.bridge_slave_data, "bridge_slave": owner.bridge_slave_data,
                "bond": owner.bond_slave_data}.get(kind)
    if t == "af_spec":
        return {0: owner.af_spec_inet, 2: owner.af_spec_inet, 10: owner.af_spec_inet,
                7: owner.af_spec_bridge}.get(family)
    if t == "protinfo":
        if family == 7:
            from pyroute2.netlink.rtnl.ifinfmsg import protinfo_bridge

            return protinfo_bridge
        if family == 10:
            return owner.af_spec_inet.inet6
    return None


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
        return _multipath(data, Schema.of(spec.owner), family, depth)
    if k == K_VIA:
        if len(data) >= 2:
            return Via(struct.unpack_from("=H", data)[0], data[2:])
        return HexBytes(data)
    if k == K_DYN:
        cls = _dynamic(spec, family, siblings or {})
        if cls is not None and depth < MAX_DEPTH:
            kind, sub, st = _class_kind(spec.tname, cls)
            return value_of(AttrSpec(spec.name, kind, st, sub, cls), data, family, siblings,
                            depth, nested_flag)
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
        from pyroute2.netlink.rtnl import RTM_VALUES

        _NAMES.update(NLMSG_NAMES)
        _NAMES.update(RTM_VALUES)
        _NAMES.update({104: "RTM_NEWNEXTHOP", 105: "RTM_DELNEXTHOP", 106: "RTM_GETNEXTHOP"})
    return _NAMES


def type_name(mtype: int) -> str:
    """``RTM_NEWROUTE`` for 24; the number as text when no name is known."""
    return _rtm_names().get(mtype) or str(mtype)


def msg_type(mtype: int) -> MsgType:
    """The :class:`MsgType` of an rtnetlink message type (built on first use)."""
    t = _TYPES.get(mtype)
    if t is None:
        t = _TYPES[mtype] = _build_type(mtype)
    return t


def _build_type(mtype: int) -> MsgType:
    from pyroute2.netlink.rtnl.marshal import MarshalRtnl

    name = type_name(mtype)
    cls = MarshalRtnl.msg_map.get(mtype)
    fixed = fixed_header_len(NETLINK_ROUTE, mtype) or 0
    if cls is None:
        if mtype in (80, 81, 82):  # pyroute2 0.9 has no netconf map: linux/netconf.h
            return MsgType(name, ("family",), struct.Struct("=Bxxx"), 4, NETCONF,
                           [("family", struct.Struct("=B"), 0)])
        return MsgType(name, (), None, fixed, EMPTY)
    spec = _fields_spec(cls.fields) or []
    names = tuple("family" if i == 0 and n in ("family", "rtgen_family") else n
                  for i, (n, _st, _o) in enumerate(spec))
    try:  # the whole fixed struct, pads included, read in one unpack
        st: struct.Struct | None = struct.Struct(
            "=" + "".join(f[1].lstrip("=<>!@") for f in cls.fields))
    except struct.error:
        st = None
    header_len = max(fixed, st.size if st else 0)
    return MsgType(name, names, st, header_len, Schema.of(cls), spec)


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


def decode_message(buf: bytes, off: int, protocol: int = NETLINK_ROUTE) -> tuple[RtMsg, int]:
    """The message at ``buf[off]``; returns it and where the next one starts (-1: stop)."""
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
    t = _TYPES.get(mtype) or msg_type(mtype)
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


def decode_buffer(buf: bytes | bytearray | memoryview,
                  protocol: int = NETLINK_ROUTE) -> list[RtMsg]:
    """Every message in one datagram or captured record (never raises).

    The common case (a whole rtnetlink message of a known type) is read inline;
    the rest goes through :func:`decode_message`.
    """
    if not isinstance(buf, bytes):
        buf = bytes(buf)
    out: list[RtMsg] = []
    append = out.append
    off, n = 0, len(buf)
    hdr = _NLMSGHDR
    types = _TYPES
    attrs = decode_attrs
    route = protocol == NETLINK_ROUTE
    try:
        while off + NLMSG_HDRLEN <= n:
            length, mtype, flags, seq, pid = hdr(buf, off)
            end = off + length
            t = types.get(mtype) if route else None
            if t is None or length < NLMSG_HDRLEN or end > n or t.header_st is None \
                    or off + NLMSG_HDRLEN + t.header_len > end:
                m, off = decode_message(buf, off, protocol)
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
