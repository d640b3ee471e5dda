"""The netlink framing exists once (rawlab.sockets.netlink_wire): golden walks, fuzz, cross-checks.

The golden values were taken from the five walks the wire module replaced
(sockets.netlink.split_messages / extack_message, the decode.netlink view,
decode.rtnl.decode_buffer, sockets.diag.parse_attrs) on the same bytes.
"""

from __future__ import annotations

import errno
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rawlab.decode import rtnl
from rawlab.decode.netlink import Netlink, parse_attrs
from rawlab.sockets import netlink_wire as wire

pytestmark = pytest.mark.unit
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


nla = wire.nlattr
msg = wire.nlmsg


IFINFO = struct.pack("=BxHiII", 0, 772, 1, 0x49, 0)
NEWLINK = msg(16, 0, 7, 1234, IFINFO + nla(3, b"lo\0") + nla(4, struct.pack("=I", 65536))
              + nla(18 | 0x8000, nla(1, b"veth\0")))
DONE = msg(3, 2, 7, 1234, struct.pack("=i", 0))
ORIG = struct.pack("=IHHII", 32, 24, 5, 9, 0)
ACK = msg(2, 0x100, 3, 0, struct.pack("=i", 0) + ORIG)
CASES = {
    "link+done": NEWLINK + DONE,
    "truncated": NEWLINK[:-6],
    "short_len": struct.pack("=IHHII", 8, 16, 0, 0, 0) + b"xxxx",
    "leftover": NEWLINK + b"\1\2\3",
    "err_capped": msg(2, 0x300, 9, 0, struct.pack("=i", -22) + ORIG
                      + nla(1, b"Nexthop has invalid gateway\0")),
    "err_full": msg(2, 0x200, 9, 0, struct.pack("=i", -17) + NEWLINK
                    + nla(2, struct.pack("=I", 20)) + nla(1, b"File exists\0")),
    "done_err": msg(3, 0x202, 9, 0, struct.pack("=i", -95) + nla(1, b"dump not supported\0")),
    "ack": ACK,
    "three": NEWLINK + ACK + DONE,
}
# (offset, len, type, flags, seq, pid, truncated, malformed, error, extack) per message
GOLDEN = {
    "link+done": [(0, 64, 16, 0, 7, 1234, False, False, None, None),
                  (64, 20, 3, 2, 7, 1234, False, False, 0, None)],
    "truncated": [(0, 64, 16, 0, 7, 1234, True, False, None, None)],
    "short_len": [(0, 8, 16, 0, 0, 0, False, True, None, None)],
    "leftover": [(0, 64, 16, 0, 7, 1234, False, False, None, None)],
    "err_capped": [(0, 68, 2, 0x300, 9, 0, False, False, -22, "Nexthop has invalid gateway")],
    "err_full": [(0, 108, 2, 0x200, 9, 0, False, False, -17, "File exists")],
    "done_err": [(0, 44, 3, 0x202, 9, 0, False, False, -95, "dump not supported")],
    "ack": [(0, 36, 2, 0x100, 3, 0, False, False, 0, None)],
    "three": [(0, 64, 16, 0, 7, 1234, False, False, None, None),
              (64, 36, 2, 0x100, 3, 0, False, False, 0, None),
              (100, 20, 3, 2, 7, 1234, False, False, 0, None)],
}
# the view's (truncated, malformed); decode_buffer's ok per message
VIEW_FLAGS = {"truncated": (True, False), "short_len": (False, True), "leftover": (True, False)}
RTNL_OK = {"truncated": [False], "short_len": [False]}


def row(m: wire.NlMsg) -> tuple[object, ...]:
    return (m.offset, m.len, m.type, m.flags, m.seq, m.pid, m.truncated, m.malformed, m.error,
            m.extack)


@pytest.mark.parametrize("name", sorted(CASES))
def test_messages_golden(name: str) -> None:
    buf = CASES[name]
    msgs = list(wire.messages(buf))
    assert [row(m) for m in msgs] == GOLDEN[name]
    # the decoders walk the same messages
    view = Netlink(buf, 0)
    assert [row(m)[:8] for m in view.messages] == [g[:8] for g in GOLDEN[name]]
    assert (view.truncated, view.malformed) == VIEW_FLAGS.get(name, (False, False))
    decoded = rtnl.decode_buffer(buf)
    assert [(m.offset, m.type, m.error, m.extack) for m in decoded] == [
        (g[0], g[2], g[8], g[9]) for g in GOLDEN[name]]
    assert [m.ok for m in decoded] == RTNL_OK.get(name, [True] * len(decoded))


def test_payloads_and_builders() -> None:
    (m, done) = wire.messages(NEWLINK + DONE)
    assert m.payload == NEWLINK[16:] and done.payload == b"\0\0\0\0"
    assert wire.nlmsg(3, 2, 7, 1234, b"\0" * 4) == struct.pack("=IHHIIi", 20, 3, 2, 7, 1234, 0)
    assert wire.nlattr(3, b"lo\0") == struct.pack("=HH3sx", 7, 3, b"lo\0")
    assert (m.next_offset, done.next_offset) == (64, 84)
    assert next(wire.messages(NEWLINK[:-6])).next_offset == -1


ATTRS = {
    "clean": nla(3, b"lo\0") + nla(18 | 0x8000, nla(1, b"veth\0")),
    "truncated": struct.pack("=HH", 40, 1) + b"abcd",
    "malformed": nla(3, b"ab") + struct.pack("=HH", 2, 1) + b"abcd",
    "leftover": nla(3, b"ab") + b"\1\2",
    "netbyteorder": nla(5 | 0x4000, b"\0\0\0\1"),
}
# wire.attributes: (type with marks, value start, value end)
ATTR_GOLDEN = {
    "clean": [(3, 4, 7), (18 | 0x8000, 12, 24)],
    "truncated": [(1 | wire.ATTR_TRUNCATED, 4, 8)],
    "malformed": [(3, 4, 6), (1 | wire.ATTR_MALFORMED, 12, 16)],
    "leftover": [(3, 4, 6), (wire.ATTR_LEFTOVER, 8, 10)],
    "netbyteorder": [(5 | 0x4000, 4, 8)],
}
# the old view's tree: (type, offset, length, data, truncated, malformed, nested) + flags
TREE_GOLDEN = {
    "clean": ([(3, 0, 7, b"lo\0", False, False, False),
               (18, 8, 16, nla(1, b"veth\0"), False, False, True)], (False, False)),
    "truncated": ([(1, 0, 40, b"abcd", True, False, False)], (True, False)),
    "malformed": ([(3, 0, 6, b"ab", False, False, False), (1, 8, 2, b"abcd", False, True, False)],
                  (False, True)),
    "leftover": ([(3, 0, 6, b"ab", False, False, False)], (False, True)),
    "netbyteorder": ([(5, 0, 8, b"\0\0\0\1", False, False, False)], (False, False)),
}
# what the old sock_diag walk kept (whole attributes, first of a type)
MAP_GOLDEN = {"clean": {3: b"lo\0", 18: nla(1, b"veth\0")}, "truncated": {},
              "malformed": {3: b"ab"}, "leftover": {3: b"ab"}, "netbyteorder": {5: b"\0\0\0\1"}}


@pytest.mark.parametrize("name", sorted(ATTRS))
def test_attributes_golden(name: str) -> None:
    buf = ATTRS[name]
    assert list(wire.attributes(buf, 0, len(buf))) == ATTR_GOLDEN[name]
    attrs, trunc, bad = parse_attrs(buf, 0, len(buf))
    assert ([(a.type, a.offset, a.length, a.data, a.truncated, a.malformed, a.nested_flag)
             for a in attrs], (trunc, bad)) == TREE_GOLDEN[name]
    assert wire.attr_map(buf) == MAP_GOLDEN[name]


def test_other_byte_orders() -> None:
    big = struct.pack(">IHHII", 24, 16, 1, 2, 3) + struct.pack(">HH", 8, 3) + b"abcd"
    (m,) = wire.messages(big, byteorder=">")
    assert (m.len, m.type, m.flags, m.seq, m.pid, m.ok) == (24, 16, 1, 2, 3, True)
    assert list(wire.attributes(big, 16, 24, ">")) == [(3, 20, 24)]


@SETTINGS
@given(st.binary(max_size=300), st.sampled_from(["=", "<", ">"]))
def test_random_bytes_walk_to_marked_results_never_raise(data: bytes, order: str) -> None:
    msgs = list(wire.messages(data, byteorder=order))
    pos = 0
    for i, m in enumerate(msgs):
        assert m.offset == pos
        last = i == len(msgs) - 1
        assert m.ok or last  # only the last message may be cut short or malformed
        assert m.truncated == (m.len >= 16 and m.offset + m.len > len(data))
        assert m.malformed == (m.len < 16)
        pos = m.next_offset
    assert pos == -1 or len(data) - pos < 16 or pos >= len(data)  # the rest holds no header
    for m in msgs:
        _ = (m.payload, m.end, m.fields(), repr(m))
    marks = [a for a, _p, _q in wire.attributes(data, 0, len(data), order) if a > 0xFFFF]
    assert len(marks) <= 1  # a bad attribute ends the walk, marked
    list(wire.attr_items(data))
    wire.message_ends(data)
    wire.extack(data, 0, len(data), order)


def _message_ends_by_walk(buf: bytes) -> tuple[bool, int | None, int]:
    intr = 0
    for m in wire.messages(buf):
        if m.malformed:
            return True, errno.EBADMSG, intr
        intr |= m.flags & wire.NLM_F_DUMP_INTR
        if m.type in (wire.NLMSG_DONE, wire.NLMSG_ERROR):
            err = m.error or 0
            return True, (-err if err < 0 else None) if m.type == wire.NLMSG_DONE \
                else (-err if err else None), intr
    return False, None, intr


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from([2, 3, 16, 24, 24, 24]), st.sampled_from([0, 2, 0x12]),
                          st.integers(-100, 0)), max_size=8))
def test_the_dump_end_scan_agrees_with_the_walk(items: list[tuple[int, int, int]]) -> None:
    """message_ends steps over runs with a regex; it must see what messages() sees."""
    buf = b"".join(msg(t, f, 1, 0, struct.pack("=i", e) + (ORIG if t == 2 else b"x" * 12))
                   for t, f, e in items)
    assert wire.message_ends(buf) == _message_ends_by_walk(buf)


@SETTINGS
@given(st.one_of(st.binary(max_size=120),
                 st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=12)),
                          max_size=6).map(lambda xs: b"".join(nla(t, v) for t, v in xs))),
       st.integers(0, 8))
def test_the_decoders_inline_walk_is_the_wire_walk(data: bytes, cut: int) -> None:
    """decode.rtnl.decode_attrs walks inline (the dump's hot path): same values, same verdict."""
    data = data[:len(data) - cut] if cut < len(data) else data
    got, ok = rtnl.decode_attrs(data, 0, len(data), rtnl.EMPTY)
    want: dict[str, list[bytes]] = {}
    clean = True
    for atype, p, q in wire.attributes(data, 0, len(data)):
        if atype > 0xFFFF:
            clean = False
            if not atype & wire.ATTR_TRUNCATED:
                break
        want.setdefault(str(atype & wire.NLA_TYPE_MASK), []).append(data[p:q])
    assert ok == clean
    flat = {k: [u.data for u in (v if isinstance(v, list) else [v])] for k, v in got.items()}
    assert flat == want
