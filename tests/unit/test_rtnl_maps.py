"""rtnl_maps.py is what the generator makes of the installed pyroute2, and decodes as it does.

The reference is :mod:`rawlab.decode.rtnl_maps_gen`'s live compile of pyroute2's
classes (what rtnl.py did at run time before the snapshot):
``decode_buffer(buf, types=live_msg_type)`` walks the same bytes with it.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rawlab.decode import rtnl, rtnl_maps
from rawlab.decode import rtnl_maps_gen as gen

pytestmark = pytest.mark.unit

FAMILIES = (0, 1, 2, 7, 10, 28, 129)
SLAVE_KINDS = ("bridge", "bridge_slave", "bond")


def attr(atype: int, payload: bytes, nested: bool = False) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), atype | (0x8000 if nested else 0)) + payload
    return raw + b"\0" * (-len(raw) % 4)


def msg(mtype: int, body: bytes, *, flags: int = 0, seq: int = 1, pid: int = 0) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), mtype, flags, seq, pid) + body


def header(mtype: int, family: int) -> bytes:
    """A message type's fixed header: ``family`` first, the rest a byte pattern."""
    n = gen.live_msg_type(mtype).header_len
    return bytes([family]) + bytes((i * 37 + 11) & 0xFF for i in range(1, n)) if n else b""


def info_kinds() -> list[str]:
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    return sorted(ifinfmsg.ifinfo.data_map)


# ---- comparing decodes ------------------------------------------------------------

def canon(v: Any) -> Any:
    """A value with the Python type of every part spelled out (== compares them all)."""
    if isinstance(v, dict):
        return ("dict", type(v).__name__, tuple((k, canon(x)) for k, x in v.items()))
    if isinstance(v, list):
        return ("list", type(v).__name__, tuple(canon(x) for x in v))
    if isinstance(v, rtnl.Unknown):
        return ("Unknown", v.type, v.data, v.nested)
    if isinstance(v, rtnl.Via):
        return ("Via", v.family, v.addr)
    return (type(v).__name__, v)


def decoded(raw: bytes, live: bool, protocol: int = 0) -> Any:
    types = gen.live_msg_type if live else None
    return canon([{"type": m.type, "ok": m.ok, "family": m.family, "header": m.header,
                   "attrs": m.attrs, "error": m.error, "extack": m.extack, "len": m.len}
                  for m in rtnl.decode_buffer(raw, protocol, types=types)])


def assert_same(raw: bytes) -> Any:
    snap, live = decoded(raw, False), decoded(raw, True)
    assert snap == live, raw.hex()
    off = 0  # decode_message, one by one: it may raise (decode_buffer catches that)
    while 0 <= off <= len(raw) - 16:
        one, other = message(raw, off, None), message(raw, off, gen.live_msg_type)
        assert one == other, raw.hex()
        off = one[0]
    return snap


def message(raw: bytes, off: int, types: Any) -> tuple[Any, ...]:
    try:
        m, nxt = rtnl.decode_message(raw, off, types=types)
    except Exception as exc:  # e.g. a repeated IFLA_INFO_KIND: unhashable, both ways
        return -1, type(exc).__name__, str(exc)
    return nxt, canon((m.header, m.attrs, m.ok))


# ---- building valid attributes from the live specs -----------------------------

class Build:
    """Valid-size payloads for every attribute a schema knows, nested ones filled in."""

    def __init__(self, family: int, kind: str = "veth", slave_kind: str = "bridge",
                 max_depth: int = 3) -> None:
        self.family = family
        self.kind = kind
        self.slave_kind = slave_kind
        self.max_depth = max_depth

    def attrs(self, schema: rtnl.Schema, depth: int = 0) -> bytes:
        out = []
        siblings: dict[str, Any] = {}
        for num in sorted(schema.by_type):
            spec = schema.by_type[num]
            payload, nested = self.payload(spec, siblings, depth)
            out.append(attr(num, payload, nested))
        return b"".join(out)

    def payload(self, spec: rtnl.AttrSpec, siblings: dict[str, Any],
                depth: int) -> tuple[bytes, bool]:
        k, n = spec.kind, sum(map(ord, spec.name))
        if k == rtnl.K_INT:  # the top bit set in every byte: signedness and order show
            assert spec.st is not None
            return bytes(0x80 | (n + 3 * i) & 0xFF for i in range(spec.st.size)), False
        if k == rtnl.K_STR:
            word = {"IFLA_INFO_KIND": self.kind,
                    "IFLA_INFO_SLAVE_KIND": self.slave_kind}.get(spec.name, spec.name.lower())
            siblings[spec.name] = word
            return word.encode() + b"\0", False
        if k == rtnl.K_IP:
            return bytes(range(1, 17 if self.family == 10 else 5)), False
        if k == rtnl.K_MAC:
            return bytes([2, 0, 0, 0, 0, n & 0xFF]), False
        if k == rtnl.K_STRUCT:
            size = max((off + fst.size for _f, fst, off in spec.sub), default=0)
            return bytes(0x80 | (n + 3 * i) & 0xFF for i in range(size)), False
        if k == rtnl.K_U32ARRAY:
            return struct.pack("=3I", 1, 2, n), False
        if k == rtnl.K_VIA:
            return struct.pack("=H", 2) + bytes([10, 0, 0, 1]), False
        if k == rtnl.K_FLAG:
            return b"", False
        if depth >= self.max_depth:
            return b"", k in (rtnl.K_NEST, rtnl.K_DYN)
        if k == rtnl.K_NEST:
            return self.attrs(spec.schema(), depth + 1), True
        if k == rtnl.K_MULTIPATH:
            inner = self.attrs(spec.schema(), depth + 1)
            gw = attr(5, bytes([10, 0, 0, 9]))
            return (struct.pack("=HBBi", 8 + len(inner), 1, 2, 3) + inner
                    + struct.pack("=HBBi", 8 + len(gw), 0, 1, 4) + gw), False
        if k == rtnl.K_DYN:
            chosen = spec.choose(self.family, siblings)
            if chosen is None:
                return attr(1, b"\x01\x02\x03\x04") + attr(2, b"x\0", True), True
            return self.payload(chosen, siblings, depth)
        if k == rtnl.K_ARRAY:  # two elements, indexed from 1
            one, nested = self.payload(spec.element(), {}, depth + 1)
            return attr(1, one, nested) + attr(2, one, nested), True
        return bytes(range(n % 7 + 1)), False


def every_attribute(mtype: int, family: int, **kw: Any) -> bytes:
    t = gen.live_msg_type(mtype)
    return msg(mtype, header(mtype, family) + Build(family, **kw).attrs(t.schema))


# ---- the tests ------------------------------------------------------------------

def test_snapshot_is_what_the_generator_makes() -> None:
    want = gen.render()
    have = gen.TARGET.read_text()
    if have != want:
        lines = zip(have.splitlines(), want.splitlines(), strict=False)
        first = next((i for i, (a, b) in enumerate(lines) if a != b),
                     min(len(have.splitlines()), len(want.splitlines())))
        pytest.fail(f"src/rawlab/decode/rtnl_maps.py is not what pyroute2 "
                    f"{gen.pyroute2_version()} gives (first difference: line {first + 1}); "
                    f"regenerate it: {gen.COMMAND}")
    assert gen.pyroute2_version() == rtnl_maps.PYROUTE2


def test_type_names_and_headers_match_live_compile() -> None:
    for mtype in (*range(1024), 0xFFFF):
        assert rtnl.type_name(mtype) == gen.live_type_name(mtype), mtype
        snap, live = rtnl.msg_type(mtype), gen.live_msg_type(mtype)
        assert snap.name == live.name
        assert snap.header_fields == live.header_fields, mtype
        assert (snap.header_st and snap.header_st.format) == (
            live.header_st and live.header_st.format), mtype
        assert snap.header_len == live.header_len, mtype
        assert [(n, s.format, o) for n, s, o in snap.header_spec] == [
            (n, s.format, o) for n, s, o in live.header_spec], mtype
        assert (snap.schema.name, snap.schema.prefix) == (live.schema.name, live.schema.prefix)
    assert sorted(rtnl_maps.TYPES) == gen.message_types()


def _same_spec(s: rtnl.AttrSpec, v: rtnl.AttrSpec, where: str, seen: set[Any]) -> None:
    assert (s.name, s.kind) == (v.name, v.kind), where
    assert (s.st and s.st.format) == (v.st and v.st.format), where
    if s.kind == rtnl.K_STRUCT:
        assert [(n, x.format, o) for n, x, o in s.sub] == [
            (n, x.format, o) for n, x, o in v.sub], where
    elif s.kind in (rtnl.K_NEST, rtnl.K_MULTIPATH):
        _same_schema(s.schema(), v.schema(), where, seen)
    elif s.kind == rtnl.K_ARRAY:
        _same_spec(s.element(), v.element(), f"{where}[]", seen)
    elif s.kind == rtnl.K_DYN:
        words = ["", "nope", *info_kinds(), *SLAVE_KINDS]
        cases: list[tuple[int, dict[str, Any]]] = [(f, {}) for f in range(-1, 257)]
        cases += [(f, {"IFLA_INFO_KIND": w}) for w in words for f in (0, 7, 10)]
        cases += [(0, {"IFLA_INFO_SLAVE_KIND": w, "IFLA_INFO_KIND": x})
                  for w in words for x in ("", "bond", "vxlan")]
        for family, siblings in cases:
            a, b = s.choose(family, siblings), v.choose(family, siblings)
            assert (a is None) == (b is None), (where, family, siblings)
            if a is not None and b is not None:
                _same_spec(a, b, f"{where}[{family} {siblings}]", seen)


def _same_schema(s: rtnl.Schema, v: rtnl.Schema, where: str, seen: set[Any]) -> None:
    if (id(s), id(v)) in seen:
        return
    seen.add((id(s), id(v)))
    assert (s.name, s.prefix) == (v.name, v.prefix), where
    assert sorted(s.by_type) == sorted(v.by_type), where
    for num, spec in s.by_type.items():
        _same_spec(spec, v.by_type[num], f"{where}.{spec.name}", seen)


def test_every_schema_matches_live_compile() -> None:
    seen: set[Any] = set()
    for mtype in rtnl_maps.TYPES:
        snap, live = rtnl.msg_type(mtype), gen.live_msg_type(mtype)
        _same_schema(snap.schema, live.schema, snap.name, seen)
    assert len({s for s, _v in seen}) == len(rtnl_maps.SCHEMAS)  # all of them reached


@pytest.mark.parametrize("mtype", sorted(rtnl_maps.TYPES))
def test_every_attribute_of_every_type_decodes_alike(mtype: int) -> None:
    for family in FAMILIES:
        raw = every_attribute(mtype, family)
        assert_same(raw)
        assert_same(raw[: len(raw) * 2 // 3])  # truncated
        body = raw[16:]
        assert_same(msg(mtype, body[: len(header(mtype, family))]))  # header only


@pytest.mark.parametrize("kind", [*info_kinds(), "nope"])
def test_link_kinds_decode_alike(kind: str) -> None:
    for slave in (*SLAVE_KINDS, "nope", ""):  # "": IFLA_INFO_KIND decides
        for family in (0, 2, 7, 10):
            assert_same(every_attribute(16, family, kind=kind, slave_kind=slave))
    (m,) = rtnl.decode_buffer(every_attribute(16, 7, kind=kind))
    info = m.attrs["IFLA_LINKINFO"]
    assert m.ok and info["IFLA_INFO_KIND"] == kind
    named = [k for k in info["IFLA_INFO_DATA"] if not k.isdigit()]
    assert named if kind != "nope" else not named  # an unknown kind: numbers only


def test_known_nested_shapes() -> None:
    """A few values checked by hand: the maps behind them are the ones that matter."""
    (m,) = rtnl.decode_buffer(every_attribute(16, 2, kind="vxlan", max_depth=4))
    assert m.attrs["IFLA_LINKINFO"]["IFLA_INFO_KIND"] == "vxlan"
    assert "IFLA_VXLAN_ID" in m.attrs["IFLA_LINKINFO"]["IFLA_INFO_DATA"]
    assert "AF_INET" in m.attrs["IFLA_AF_SPEC"]
    conf = [1, 2, sum(map(ord, "IFLA_INET_CONF"))]  # Build's u32 array
    assert m.attrs["IFLA_AF_SPEC"]["AF_INET"] == {"IFLA_INET_CONF": conf}
    (br,) = rtnl.decode_buffer(every_attribute(16, 7, kind="bridge"))
    assert "IFLA_BRPORT_STATE" in br.attrs["IFLA_PROTINFO"]
    assert "IFLA_BR_STP_STATE" in br.attrs["IFLA_LINKINFO"]["IFLA_INFO_DATA"]
    (r,) = rtnl.decode_buffer(every_attribute(24, 2))
    hops = r.attrs["RTA_MULTIPATH"]
    assert [(h["flags"], h["hops"], h["oif"]) for h in hops] == [(1, 2, 3), (0, 1, 4)]
    assert hops[1]["attrs"] == {"RTA_GATEWAY": rtnl.IpAddr(bytes([10, 0, 0, 9]))}
    assert "RTA_TABLE" in hops[0]["attrs"]


# ---- random messages --------------------------------------------------------------

@st.composite
def attributes(draw: st.DrawFn, schema: rtnl.Schema, family: int, depth: int = 0) -> bytes:
    """Attributes of ``schema``: known numbers (valid or random payloads), unknown ones."""
    known = sorted(schema.by_type)
    nums = draw(st.lists(st.sampled_from(known) if known else st.integers(0, 40),
                         max_size=8))
    nums += draw(st.lists(st.integers(0, 0x3FFF), max_size=2))
    if draw(st.booleans()):
        nums.sort()  # IFLA_INFO_KIND before IFLA_INFO_DATA
    build = Build(family, kind=draw(st.sampled_from([*info_kinds(), "x"])),
                  slave_kind=draw(st.sampled_from([*SLAVE_KINDS, ""])), max_depth=1)
    siblings: dict[str, Any] = {}
    out = []
    for num in nums:
        spec = schema.by_type.get(num)
        how = draw(st.sampled_from(["valid", "random", "nested"]))
        nested = draw(st.booleans())
        if spec is not None and how == "valid":
            payload, nested = build.payload(spec, siblings, depth + 1 if depth < 2 else 9)
        elif spec is not None and how == "nested" and depth < 3 and spec.kind in (
                rtnl.K_NEST, rtnl.K_MULTIPATH, rtnl.K_DYN):
            sub = spec.choose(family, siblings) if spec.kind == rtnl.K_DYN else spec
            inner = sub.schema() if sub is not None and sub.kind == rtnl.K_NEST else rtnl.EMPTY
            payload = draw(attributes(inner, family, depth + 1))
        else:
            payload = draw(st.binary(max_size=40))
        out.append(attr(num, payload, nested))
    return b"".join(out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), mtype=st.sampled_from([*sorted(rtnl_maps.TYPES), 23, 110, 999]),
       family=st.sampled_from(FAMILIES) | st.integers(0, 255))
def test_random_messages_decode_alike(data: st.DataObject, mtype: int, family: int) -> None:
    schema = gen.live_msg_type(mtype).schema
    body = header(mtype, family) + data.draw(attributes(schema, family))
    raw = msg(mtype, body)
    cut = data.draw(st.integers(16, len(raw)))
    assert_same(raw + msg(mtype, body[:8]) + raw[:cut])


def test_decoding_never_imports_pyroute2() -> None:
    code = """
import struct, sys
from rawlab.decode import rtnl
from rawlab.decode.rtnl_maps import NAMES
def attr(t, p, f=0):
    raw = struct.pack("=HH", 4 + len(p), t | f) + p
    return raw + bytes(-len(raw) % 4)
seen = 0
for mtype in sorted(NAMES):
    if mtype < 16:
        continue
    body = bytes(rtnl.msg_type(mtype).header_len) + attr(1, bytes(8)) + attr(3, b"x\\0")
    (m,) = rtnl.decode_buffer(struct.pack("=IHHII", 16 + len(body), mtype, 0, 1, 0) + body)
    assert m.ok and rtnl.type_name(m.type) == NAMES[mtype], (mtype, m)
    seen += 1
info = attr(1, b"veth\\0") + attr(2, attr(1, attr(3, b"peer\\0"), 0x8000), 0x8000)
link = bytes([7]) + bytes(15) + attr(18, info, 0x8000) + attr(12, attr(1, b"\\3"), 0x8000)
(m,) = rtnl.decode_buffer(struct.pack("=IHHII", 16 + len(link), 16, 0, 1, 0) + link)
assert m.attrs["IFLA_LINKINFO"]["IFLA_INFO_KIND"] == "veth", m
assert m.attrs["IFLA_PROTINFO"] == {"IFLA_BRPORT_STATE": 3}, m
print(seen, sorted(n for n in sys.modules if n.split(".")[0] == "pyroute2"))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split(maxsplit=1)
    assert int(out[0]) == sum(1 for t in rtnl_maps.NAMES if t >= 16)
    assert out[1].strip() == "[]"
