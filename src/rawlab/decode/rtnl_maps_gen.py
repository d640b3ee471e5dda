"""Write :mod:`rawlab.decode.rtnl_maps` from pyroute2's nla maps (the reference decoder).

    .venv/bin/python -m rawlab.decode.rtnl_maps_gen --write   # rewrite rtnl_maps.py
    .venv/bin/python -m rawlab.decode.rtnl_maps_gen           # print it
    .venv/bin/python -m rawlab.decode.rtnl_maps_gen --check   # exit 1 if rtnl_maps.py differs

pyroute2 is the source of rtnetlink names and attribute types, but importing it
is slow (bench/README.md), so :mod:`rawlab.decode.rtnl` decodes from a generated snapshot
of its maps instead. This module is the only one that imports pyroute2 for
that. It compiles pyroute2's classes live, as the decoder used to at run time:

* :func:`live_msg_type` / :func:`live_type_name`: a message type from
  ``MarshalRtnl.msg_map`` and ``RTM_VALUES``, plus rawlab's own additions
  (``netconfmsg`` for types 80-82, which pyroute2 0.9 lacks; the RTM_*NEXTHOP
  names 104-106);
* :func:`live_schema`: one class's ``nla_map`` compiled to a :class:`LiveSchema`
  (``_OVERRIDES`` fixes ``af_spec_inet``: AF_INET holds IFLA_INET_CONF);
* :class:`LiveAttrSpec`: nested schemas compiled on demand; ``*get_nh`` reads
  next hops with the owner's schema; the staticmethods that choose a class at
  run time are followed by :func:`_dynamic` (``info_data`` by IFLA_INFO_KIND,
  ``info_slave_data``, ``af_spec`` and ``protinfo`` by family).

``rawlab.decode.rtnl.decode_buffer(buf, types=live_msg_type)`` decodes through
this live compile: the tests compare it with the snapshot.
:func:`render` walks everything reachable from every message type and writes
it as plain literals, sorted, so that regenerating is byte-stable.
"""

from __future__ import annotations

import re
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rawlab.decode.rtnl import (
    EMPTY,
    K_DYN,
    K_FLAG,
    K_HEX,
    K_INT,
    K_IP,
    K_MAC,
    K_MULTIPATH,
    K_NEST,
    K_NONE,
    K_STR,
    K_STRUCT,
    K_U32ARRAY,
    K_VIA,
    NLMSG_NAMES,
    AttrSpec,
    MsgType,
    Schema,
    fixed_header_len,
)
from rawlab.sockets.netlink_wire import NETLINK_ROUTE

TARGET = Path(__file__).with_name("rtnl_maps.py")
KEY_PREFIX = "pyroute2.netlink.rtnl."
COMMAND = ".venv/bin/python -m rawlab.decode.rtnl_maps_gen --write"
KIND_NAMES = {K_INT: "int", K_STR: "str", K_IP: "ip", K_MAC: "mac", K_HEX: "hex",
              K_FLAG: "flag", K_NONE: "none", K_NEST: "nest", K_STRUCT: "struct",
              K_DYN: "dyn", K_U32ARRAY: "u32array", K_MULTIPATH: "multipath", K_VIA: "via"}

# rawlab's additions to pyroute2's message maps
NEXTHOP_NAMES = {104: "RTM_NEWNEXTHOP", 105: "RTM_DELNEXTHOP", 106: "RTM_GETNEXTHOP"}
NETCONF_TYPES = (80, 81, 82)  # pyroute2 0.9 has no netconf map: linux/netconf.h
NETCONF_ATTRS = ("NETCONFA_UNSPEC", "NETCONFA_IFINDEX", "NETCONFA_FORWARDING",
                 "NETCONFA_RP_FILTER", "NETCONFA_MC_FORWARDING", "NETCONFA_PROXY_NEIGH",
                 "NETCONFA_IGNORE_ROUTES_WITH_LINKDOWN", "NETCONFA_INPUT",
                 "NETCONFA_BC_FORWARDING")


# ---- the live compile (pyroute2 classes -> schemas) --------------------------------

class LiveSchema(Schema):
    """A :class:`Schema` compiled from a pyroute2 class (``cls``), or one of rawlab's."""

    __slots__ = ("cls", "key")

    def __init__(self, name: str, by_type: dict[int, AttrSpec], prefix: str = "",
                 cls: Any = None, key: str = "") -> None:
        super().__init__(name, by_type, prefix)
        self.cls = cls
        # the class's module and qualified name, without "pyroute2.netlink.rtnl."
        self.key = key or f"{cls.__module__}.{cls.__qualname__}".removeprefix(KEY_PREFIX)
        assert self.key.rpartition(".")[2] == name, (self.key, name)


class LiveAttrSpec(AttrSpec):
    """An :class:`AttrSpec` that follows pyroute2 classes as it is used."""

    __slots__ = ("owner", "tname")

    def __init__(self, name: str, kind: int, st: struct.Struct | None = None,
                 sub: Any = None, owner: Any = None, tname: str = "") -> None:
        super().__init__(name, kind, st, sub)
        self.owner = owner  # the class whose map holds this attribute
        self.tname = tname  # the pyroute2 type name

    def schema(self) -> Schema:
        if self.kind == K_MULTIPATH:  # next hops carry the owner's attributes
            return live_schema(self.owner)
        sub = self.sub
        if not isinstance(sub, Schema):
            sub = self.sub = live_schema(sub)
        return sub

    def choose(self, family: int, siblings: dict[str, Any]) -> AttrSpec | None:
        cls = _dynamic(self, family, siblings)
        if cls is None:
            return None
        kind, sub, st = _class_kind(self.tname, cls)
        return LiveAttrSpec(self.name, kind, st, sub, cls)


_LIVE: dict[Any, LiveSchema] = {}


def live_schema(nla_cls: Any) -> LiveSchema:
    """The schema of one pyroute2 class (compiled once)."""
    s = _LIVE.get(nla_cls)
    if s is None:
        s = _LIVE[nla_cls] = _compile(nla_cls)
    return s


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


def _compile(nla_cls: Any) -> LiveSchema:
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
    schema = LiveSchema(getattr(nla_cls, "__name__", "?"), by_type, prefix, nla_cls)
    fix = _OVERRIDES.get(schema.name)
    if fix:
        fix(schema)
    return schema


def _spec(owner: Any, name: str, tname: Any) -> LiveAttrSpec:
    if not isinstance(tname, str):
        return LiveAttrSpec(name, K_HEX, owner=owner)
    if tname in _PRIM_BY_NAME:
        return LiveAttrSpec(name, _PRIM_BY_NAME[tname], owner=owner, tname=tname)
    if tname.startswith("*"):
        kind = K_MULTIPATH if tname == "*get_nh" else K_DYN
        return LiveAttrSpec(name, kind, owner=owner, tname=tname.lstrip("*"))
    sub = getattr(owner, tname, None)
    if sub is None:
        return LiveAttrSpec(name, K_HEX, owner=owner, tname=tname)
    if not isinstance(sub, type):  # a staticmethod choosing the class at run time
        return LiveAttrSpec(name, K_DYN, owner=owner, tname=tname)
    kind, s, st = _class_kind(tname, sub)
    return LiveAttrSpec(name, kind, st, s, owner, tname)


def _fix_af_spec_inet(schema: Schema) -> None:
    # IFLA_AF_SPEC/AF_INET holds nested IFLA_INET_CONF (a u32 array), not a struct
    conf = LiveSchema("inet_conf", {1: LiveAttrSpec("IFLA_INET_CONF", K_U32ARRAY)},
                      "IFLA_INET_", key="rawlab.inet_conf")
    schema.by_type[2] = LiveAttrSpec("AF_INET", K_NEST, sub=conf)


_OVERRIDES: dict[str, Callable[[Schema], None]] = {"af_spec_inet": _fix_af_spec_inet}


def _dynamic(spec: LiveAttrSpec, family: int, siblings: dict[str, Any]) -> Any:
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


def _dyn_table(spec: LiveAttrSpec) -> tuple[tuple[str, ...], dict[Any, Any]] | None:
    """What :func:`_dynamic` chooses, as (sibling names, {key: class}); no names: by family.

    The key is the first sibling value that is true, else the last one (``a or b``).
    Every choice is checked against :func:`_dynamic` itself.
    """
    t = spec.tname
    names: tuple[str, ...]
    if t == "info_data":
        names, keys = ("IFLA_INFO_KIND",), list(spec.owner.data_map)
    elif t == "info_slave_data":
        names, keys = ("IFLA_INFO_SLAVE_KIND", "IFLA_INFO_KIND"), ["bridge", "bridge_slave",
                                                                  "bond"]
    elif t in ("af_spec", "protinfo"):
        names, keys = (), list(range(256))  # the family is one byte
    else:
        return None

    def probe(key: Any) -> Any:
        return _dynamic(spec, 0, {names[0]: key}) if names else _dynamic(spec, key, {})

    table = {key: cls for key in keys if (cls := probe(key)) is not None}
    for key in (["", "none", *keys] if names else range(-1, 257)):  # nothing outside it
        assert probe(key) is table.get(key), (spec.tname, key)
    return names, table


_NETCONF = LiveSchema("netconfmsg", {
    n: LiveAttrSpec(name, K_INT, struct.Struct("=i")) for n, name in enumerate(NETCONF_ATTRS)
    if n}, "NETCONFA_", key="rawlab.netconfmsg")
_LIVE_NAMES: dict[int, str] = {}
_LIVE_TYPES: dict[int, MsgType] = {}


def live_type_name(mtype: int) -> str:
    """``RTM_NEWROUTE`` for 24, from pyroute2; the number as text when no name is known."""
    if not _LIVE_NAMES:
        from pyroute2.netlink.rtnl import RTM_VALUES

        _LIVE_NAMES.update(NLMSG_NAMES)
        _LIVE_NAMES.update(RTM_VALUES)
        _LIVE_NAMES.update(NEXTHOP_NAMES)
    return _LIVE_NAMES.get(mtype) or str(mtype)


def _msg_classes() -> dict[int, Any]:
    from pyroute2.netlink.rtnl.marshal import MarshalRtnl

    return dict(MarshalRtnl.msg_map)


def live_msg_type(mtype: int) -> MsgType:
    """The :class:`MsgType` of a message type, compiled from pyroute2 (once)."""
    t = _LIVE_TYPES.get(mtype)
    if t is None:
        t = _LIVE_TYPES[mtype] = _build_type(mtype)
    return t


def _build_type(mtype: int) -> MsgType:
    name = live_type_name(mtype)
    cls = _msg_classes().get(mtype)
    fixed = fixed_header_len(NETLINK_ROUTE, mtype) or 0
    if cls is None:
        if mtype in NETCONF_TYPES:
            return MsgType(name, ("family",), struct.Struct("=Bxxx"), 4, _NETCONF,
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
    return MsgType(name, names, st, header_len, live_schema(cls), spec)


def message_types() -> list[int]:
    """Every message type the snapshot describes (pyroute2's, then rawlab's additions)."""
    return sorted({*_msg_classes(), *NETCONF_TYPES})


# ---- the snapshot ---------------------------------------------------------------

def _reachable() -> list[LiveSchema]:
    """Every schema a message type can reach, sorted by key."""
    found: dict[str, LiveSchema] = {}
    todo = [t.schema for t in map(live_msg_type, message_types())]
    while todo:
        s = todo.pop()
        assert isinstance(s, LiveSchema)
        if s.key in found:
            assert found[s.key] is s, f"two schemas named {s.key}"
            continue
        found[s.key] = s
        for spec in s.by_type.values():
            assert isinstance(spec, LiveAttrSpec)
            if spec.kind in (K_NEST, K_MULTIPATH):
                todo.append(spec.schema())
            elif spec.kind == K_DYN and (dyn := _dyn_table(spec)):
                for cls in dyn[1].values():
                    kind, sub, _st = _class_kind(spec.tname, cls)
                    if kind == K_NEST:
                        todo.append(live_schema(sub))
    return [found[k] for k in sorted(found)]


def _fields(spec: list[tuple[str, struct.Struct, int]]) -> tuple[Any, ...]:
    """C struct fields as a flat literal: field, format, offset, field, format, offset..."""
    return tuple(v for name, st, off in spec for v in (name, st.format, off))


def _arg(kind: int, st: struct.Struct | None, sub: Any, ids: dict[str, int]) -> Any:
    """What a kind needs, as a literal: a struct format, fields, a schema id."""
    if kind == K_INT:
        assert st is not None
        return st.format
    if kind == K_STRUCT:
        return _fields(sub)
    if kind == K_NEST:
        return ids[(sub if isinstance(sub, LiveSchema) else live_schema(sub)).key]
    return None


def _attr_arg(spec: LiveAttrSpec, ids: dict[str, int]) -> Any:
    if spec.kind == K_MULTIPATH:
        return ids[spec.schema().key]  # type: ignore[attr-defined]
    if spec.kind == K_DYN:
        dyn = _dyn_table(spec)
        if dyn is None:
            return None
        names, table = dyn
        choices = {}
        for key in sorted(table):
            kind, sub, st = _class_kind(spec.tname, table[key])
            choices[key] = (kind, _arg(kind, st, sub, ids))
        return names, choices
    return _arg(spec.kind, spec.st, spec.sub, ids)


def snapshot() -> dict[str, dict[Any, Any]]:
    """The data of rtnl_maps.py: NAMES, TYPES, HEADERS, SCHEMAS (plain literals, sorted)."""
    schemas = _reachable()
    ids = {s.key: i for i, s in enumerate(schemas)}
    live_type_name(0)
    names = {t: _LIVE_NAMES[t] for t in sorted(_LIVE_NAMES)}
    types: dict[int, int] = {}
    headers: dict[int, tuple[Any, ...]] = {}
    for mtype in message_types():
        t = live_msg_type(mtype)
        assert isinstance(t.schema, LiveSchema)
        sid = types[mtype] = ids[t.schema.key]
        header = (t.header_fields, t.header_st.format if t.header_st else None,
                  _fields(t.header_spec))
        assert headers.setdefault(sid, header) == header, f"two headers for {t.schema.key}"
    table: dict[int, tuple[Any, ...]] = {}
    for sid, s in enumerate(schemas):
        attrs: list[tuple[Any, ...]] = []
        for num in sorted(s.by_type):
            spec = s.by_type[num]
            assert isinstance(spec, LiveAttrSpec)
            attrs.append((num, spec.name, spec.kind, _attr_arg(spec, ids)))
        table[sid] = (s.key, s.prefix, tuple(attrs))
    return {"NAMES": names, "TYPES": types, "HEADERS": dict(sorted(headers.items())),
            "SCHEMAS": table}


def pyroute2_version() -> str:
    from importlib.metadata import version

    return version("pyroute2")


WIDTH = 99


def _flat(v: Any) -> str:
    if isinstance(v, str):
        if v.isascii() and v.isprintable() and '"' not in v and "\\" not in v:
            return f'"{v}"'
        return repr(v)
    if isinstance(v, tuple):
        inner = ", ".join(_flat(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_flat(k)}: {_flat(x)}" for k, x in v.items()) + "}"
    if v is None or isinstance(v, int):
        return repr(v)
    raise TypeError(f"not a snapshot literal: {v!r}")


def _lit(v: Any, indent: int, head: str = "", tail: str = ",", group: int = 1) -> list[str]:
    """``head`` + the literal ``v`` + ``tail`` as lines at most WIDTH long, at ``indent``.

    A tuple too long for one line puts ``group`` elements on each of its lines.
    """
    pad = " " * indent
    one = f"{pad}{head}{_flat(v)}{tail}"
    if len(one) <= WIDTH or not isinstance(v, tuple | dict) or not v:
        return [one]
    opening, closing = ("(", ")") if isinstance(v, tuple) else ("{", "}")
    lines = [f"{pad}{head}{opening}"]
    inner = " " * (indent + 4)
    if isinstance(v, tuple):
        for i in range(0, len(v), group):
            chunk = v[i:i + group]
            line = f"{inner}{', '.join(_flat(x) for x in chunk)},"
            if len(line) <= WIDTH:
                lines.append(line)
            else:
                for x in chunk:
                    lines += _lit(x, indent + 4)
    else:
        for k, x in v.items():
            lines += _lit(x, indent + 4, f"{_flat(k)}: ")
    lines.append(f"{pad}{closing}{tail}")
    return lines


def render() -> str:
    """The text of rtnl_maps.py for the installed pyroute2."""
    data = snapshot()
    version = pyroute2_version()
    kinds = ", ".join(f"{k} {n}" for k, n in KIND_NAMES.items())
    out = [
        f"# Generated by rawlab.decode.rtnl_maps_gen from pyroute2 {version}. Do not edit.",
        "# Regenerate after upgrading pyroute2 or changing the generator:",
        f"#     {COMMAND}",
        "# (tests/unit/test_rtnl_maps.py fails while this file and the generator differ)",
        '"""rtnetlink names and attribute types: a snapshot of pyroute2\'s nla maps, as data.',
        "",
        "NAMES    message type -> name",
        "TYPES    message type -> schema id of its message class",
        "HEADERS  schema id of a message class -> its fixed header: (field names, the",
        "         struct format of the whole header, fields), fields a flat tuple:",
        "         field, struct format, offset, field, format, offset...",
        "SCHEMAS  schema id -> (class, name prefix, attributes): the class as module.name",
        "         under pyroute2.netlink.rtnl (rawlab.*: rawlab's own), the schema's name",
        "         its last part; the attributes a flat tuple:",
        "         number, name, kind, arg, number, name, kind, arg...",
        "         kind as rawlab.decode.rtnl.K_*:",
        *(f"         {line}" for line in _wrap(kinds, 70)),
        "         arg: int: struct format; struct: fields (as in HEADERS); nest: schema id;",
        "         multipath: schema id of each next hop's attributes; dyn: None, or",
        "         (sibling names, {key: (kind, arg)}): the key is the first of those",
        "         siblings' values that is true (the family if no names). Else None.",
        "",
        "Only rawlab.decode.rtnl reads this, lazily: one schema when it is first used.",
        '"""',
        "",
        f'PYROUTE2 = "{version}"',
        "",
    ]
    for name in ("NAMES", "TYPES"):
        out.append(f"{name} = {{")
        for key, value in data[name].items():
            out += _lit(value, 4, f"{_flat(key)}: ")
        out += ["}", ""]
    out.append("HEADERS = {")
    for sid, (fields, fmt, spec) in data["HEADERS"].items():
        out.append(f"    {sid}: (")
        out += _lit(fields, 8) + _lit(fmt, 8) + _lit(spec, 8, group=3)
        out.append("    ),")
    out += ["}", ""]
    out.append("SCHEMAS = {")
    for sid, (key, prefix, attrs) in data["SCHEMAS"].items():
        head = f"    {sid}: ({_flat(key)}, {_flat(prefix)}, ("
        if len(head) > WIDTH:
            head = f"    {sid}: (\n        {_flat(key)},\n        {_flat(prefix)}, ("
        out.append(head)
        for num, aname, kind, arg in attrs:
            head = f"{num}, {_flat(aname)}, {kind}, "
            out += _lit(arg, 8, head, group=3 if kind == K_STRUCT else 1)
        out.append("    )),")
    out.append("}")
    return "\n".join(out) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split(", "):
        nxt = f"{line}, {word}" if line else word
        if len(nxt) > width:
            lines.append(line + ",")
            nxt = word
        line = nxt
    return [*lines, line]


def _refresh_bytecode() -> None:
    """Recompile rtnl_maps.py's .pyc if there is one (setup.sh compiles src/): with
    PYTHONDONTWRITEBYTECODE set, a stale one would make every start compile the file."""
    import importlib.util
    import py_compile

    if Path(importlib.util.cache_from_source(str(TARGET))).exists():
        py_compile.compile(str(TARGET), doraise=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if args == ["--write"]:
        TARGET.write_text(text)
        print(f"wrote {TARGET} ({len(text)} bytes)", file=sys.stderr)
        _refresh_bytecode()
        return 0
    if args == ["--check"]:
        if TARGET.read_text() != text:
            print(f"{TARGET} is stale: run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    if args:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
