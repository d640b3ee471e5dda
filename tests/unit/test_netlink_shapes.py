"""Shape templates print exactly what the ordinary decode + msg_json path prints."""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rawlab.decode.rtnl import decode_buffer
from rawlab.present.netlink import msg_json
from rawlab.present.netlink_shapes import GIVE_UP, ShapeRenderer
from rawlab.sockets.netlink_wire import message_ends

pytestmark = pytest.mark.unit

ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWNEIGH, RTM_NEWNETCONF = 16, 20, 24, 28, 80
MULTI = 0x02


def attr(atype: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), atype) + payload
    return raw + b"\0" * (-len(raw) % 4)


def msg(mtype: int, body: bytes, *, flags: int = MULTI, seq: int = 1, pid: int = 99) -> bytes:
    raw = struct.pack("=IHHII", 16 + len(body), mtype, flags, seq, pid) + body
    return raw + b"\0" * (-len(raw) % 4)


def route4(dst: int, gw: int | None, oif: int, *, seq: int = 1, proto: int = 3,
           scope: int = 0, rtype: int = 1, prio: int | None = None, table: int = 254,
           plen: int = 32) -> bytes:
    body = struct.pack("=BBBBBBBBI", 2, plen, 0, 0, table, proto, scope, rtype, 0)
    body += attr(15, struct.pack("=I", table)) + attr(1, struct.pack("!I", dst))
    if gw is not None:
        body += attr(5, struct.pack("!I", gw))
    if prio is not None:
        body += attr(6, struct.pack("=I", prio))
    body += attr(4, struct.pack("=I", oif))
    return msg(RTM_NEWROUTE, body, seq=seq)


def route6(dst: bytes, oif: int, expires: int) -> bytes:
    body = struct.pack("=BBBBBBBBI", 10, 64, 0, 0, 254, 2, 0, 1, 0)
    body += attr(15, struct.pack("=I", 254)) + attr(1, dst) + attr(6, struct.pack("=I", 256))
    body += attr(4, struct.pack("=I", oif)) + attr(20, b"\0")
    body += attr(12, struct.pack("=IIiIIIII", 0, 0, expires, 0, 0, 0, 0, 0))
    return msg(RTM_NEWROUTE, body)


def link(index: int, name: str, mtu: int, mac: bytes = b"\x02\0\0\0\0\x01") -> bytes:
    body = struct.pack("=BxHiII", 0, 1, index, 0x1043, 0)
    body += attr(3, name.encode() + b"\0") + attr(4, struct.pack("=I", mtu)) + attr(1, mac)
    return msg(RTM_NEWLINK, body)


def addr4(index: int, a: int, plen: int = 24) -> bytes:
    body = struct.pack("=BBBBI", 2, plen, 0x80, 0, index)
    body += attr(1, struct.pack("!I", a)) + attr(2, struct.pack("!I", a))
    body += attr(8, struct.pack("=I", 0x80))
    return msg(RTM_NEWADDR, body)


def neigh(index: int, ip: int, state: int, mac: bytes | None = None) -> bytes:
    body = struct.pack("=BxxxiHBB", 2, index, state, 0, 1)
    mac = mac if mac is not None else b"\x02\0\0\0\0" + bytes([ip & 0xFF])
    body += attr(1, struct.pack("!I", ip)) + attr(2, mac)
    return msg(RTM_NEWNEIGH, body)


def netconf(ifindex: int, forwarding: int) -> bytes:
    body = struct.pack("=Bxxx", 2)
    body += attr(1, struct.pack("=i", ifindex)) + attr(2, struct.pack("=i", forwarding))
    return msg(RTM_NEWNETCONF, body)


DONE = msg(3, struct.pack("=i", 0))


def ordinary(bufs: list[bytes], keep: Callable[[Any], bool] | None = None) -> str:
    return "".join(ENCODE(msg_json(m)) + "\n" for buf in bufs for m in decode_buffer(buf)
                   if m.type >= 16 and (keep is None or keep(m)))


def shaped(bufs: list[bytes], **kw: Any) -> tuple[str, ShapeRenderer]:
    r = ShapeRenderer(ENCODE, **kw)
    return b"".join(t for buf in bufs for t in r.render(buf)).decode(), r


def chunks(msgs: list[bytes], per: int) -> list[bytes]:
    return [b"".join(msgs[i:i + per]) for i in range(0, len(msgs), per)]


def test_a_table_of_routes_is_printed_by_one_template_and_equals_the_ordinary_path() -> None:
    rnd = random.Random(7)
    msgs = [route4(0x0A640000 + i, 0x0A500002 + rnd.randrange(3), rnd.randrange(1, 1 << 32),
                   seq=1 + i // 500, proto=rnd.choice((2, 3, 4, 186)),
                   scope=rnd.choice((0, 253)), rtype=rnd.choice((1, 6)))
            for i in range(3000)]
    bufs = chunks(msgs, 97)
    bufs[-1] += DONE
    out, r = shaped(bufs)
    assert out == ordinary(bufs)
    assert out.count("\n") == 3000
    assert (r.fast, r.slow) == (2994, 6)  # one ordinary message per sequence number
    first = json.loads(out.splitlines()[5])
    assert first["attrs"]["RTA_DST"] == "10.100.0.5" and first["nlmsg_type"] == "RTM_NEWROUTE"


def test_mixed_shapes_strings_ipv6_repeats_unknowns_and_odd_sizes() -> None:
    msgs: list[bytes] = []
    for i in range(60):
        msgs += [route4(0x0A000000 + i, 0x0A000001, 2, prio=i * 1000),
                 route4(0x0A000000 + i, None, 3, plen=24, scope=253),
                 route6(bytes(range(16 - 1)) + bytes([i]), 2, expires=-i),
                 link(i, f"veth{i}%s%d", 1500 + i),
                 link(i, "odd\ue000name\ue001", 9000),
                 addr4(i, 0xC0A80000 + i),
                 neigh(i, 0xC0A80000 + i, state=1 << (i % 8)),
                 netconf(-i, i % 2)]
    # a repeated attribute (a list), an unknown attribute, an over-long integer payload
    body = struct.pack("=BBBBBBBBI", 2, 32, 0, 0, 254, 3, 0, 1, 0)
    msgs.append(msg(RTM_NEWROUTE, body + attr(4, struct.pack("=I", 1)) * 2 + attr(999, b"x")))
    msgs.append(msg(RTM_NEWROUTE, body + attr(4, struct.pack("=Q", 5))))
    msgs.append(msg(RTM_NEWROUTE, body + attr(4, struct.pack("=Q", 6))))
    bufs = chunks(msgs, 41)
    bufs.append(route4(1, 2, 3)[:-6])  # truncated: the ordinary path marks it
    bufs.append(route4(1, 2, 3) + b"\x08\0\0\0")  # a length below the header: stop there
    bufs.append(DONE)
    out, r = shaped(bufs)
    assert out == ordinary(bufs)
    assert r.fast > 200  # interleaved: runs of one message, still by template


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["r", "rp", "dev", "link", "neigh", "r6", "laf"]),
                          st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 32) - 1),
                          st.text(max_size=8)), min_size=1, max_size=120),
       st.integers(1, 50))
def test_any_sequence_equals_the_ordinary_path(items: list[tuple[str, int, int, str]],
                                               per: int) -> None:
    msgs = []
    for kind, a, b, text in items:
        if kind == "r":
            msgs.append(route4(a, b, a ^ b, seq=b))
        elif kind == "rp":
            msgs.append(route4(a, b, 7, prio=b, proto=a & 0xFF))
        elif kind == "dev":
            msgs.append(route4(a, None, b, plen=a % 33, scope=253))
        elif kind == "link":
            msgs.append(link(a & 0x7FFFFFFF, text or "x", b))
        elif kind == "r6":
            msgs.append(route6(struct.pack("=QQ", a, b), a & 0xFF, expires=-(b & 0xFFFF)))
        elif kind == "laf":
            msgs.append(link_af(a & 0x7FFFFFFF, text or "x", struct.pack("=HI", a & 0xFFFF, b),
                                b, a))
        else:
            msgs.append(neigh(a & 0x7FFFFFFF, b, state=a & 0xFF))
    bufs = chunks(msgs, per)
    assert shaped(bufs)[0] == ordinary(bufs)


def neigh6(index: int, ip: bytes, mac: bytes, used: int) -> bytes:
    body = struct.pack("=BxxxiHBB", 10, index, 0x02, 0, 1)
    body += attr(1, ip) + attr(2, mac) + attr(3, struct.pack("=IIII", used, used + 1, 7, 0))
    body += attr(4, struct.pack("=I", used % 5))
    return msg(RTM_NEWNEIGH, body)


def link_af(index: int, name: str, mac: bytes, tstamp: int, reachable: int) -> bytes:
    """A link with IFLA_LINKINFO/IFLA_INFO_KIND and IFLA_AF_SPEC/AF_INET6's cache info (a
    struct two levels down) and token (an IPv6 address)."""
    inet6 = attr(5, struct.pack("=IIII", 65535, tstamp, reachable, 1000))  # CACHEINFO
    inet6 += attr(7, b"\xfe\x80" + bytes(13) + bytes([index & 0xFF]))  # TOKEN
    body = struct.pack("=BxHiII", 0, 1, index, 0x1043, 0)
    body += attr(3, name.encode() + b"\0") + attr(1, mac)
    body += attr(18 | 0x8000, attr(1, b"dummy\0"))
    body += attr(26 | 0x8000, attr(10 | 0x8000, inet6))
    return msg(RTM_NEWLINK, body)


def test_ipv6_names_macs_and_nested_structs_are_slots_and_equal_the_ordinary_path() -> None:
    rnd = random.Random(11)
    routes = [route6(bytes([0x20, 1, 0xD, 0xB8]) + rnd.randbytes(12), 2, expires=-rnd.randrange(9))
              for _ in range(2000)]
    neighs = [neigh6(3, bytes([0xFE, 0x80]) + rnd.randbytes(14), rnd.randbytes(6), i)
              for i in range(1000)]
    links = [link_af(i, f"dummy{i}", rnd.randbytes(6), rnd.randrange(1 << 32),
                     rnd.randrange(15000, 45000)) for i in range(1000)]
    for msgs, kind in ((routes, "routes"), (neighs, "neigh"), (links, "links")):
        bufs = chunks(msgs, 113)
        out, r = shaped(bufs)
        assert out == ordinary(bufs), kind
        assert r.fast >= len(msgs) - 30, (kind, r.fast, r.slow)
    recs = [json.loads(x) for x in shaped(chunks(links, 50))[0].splitlines()]
    assert recs[7]["attrs"]["IFLA_IFNAME"] == "dummy7"
    assert recs[7]["attrs"]["IFLA_AF_SPEC"]["AF_INET6"]["IFLA_INET6_TOKEN"] == "fe80::7"


def test_a_filter_on_literal_fields_keeps_and_drops_whole_shapes() -> None:
    msgs = [neigh(2, 0xC0A80000 + i, state=(0x02, 0x40, 0x04, 0x00)[i % 4], mac=b"\2" * 6)
            for i in range(400)]
    bufs = chunks(msgs, 50)

    def keep(m: Any) -> bool:
        return bool(m.header.get("state", 0) & ~0x40)

    out, r = shaped(bufs, keep=keep, literal=frozenset({"state"}))
    assert out == ordinary(bufs, keep)
    assert out.count("\n") == 200 and r.fast > 300


def test_messages_that_never_repeat_stop_being_compiled() -> None:
    # names differ, and each holds a character JSON escapes (never a slot): no shape repeats
    msgs = [link(i, f'eth"{i}', 1500) for i in range(40)]
    out, r = shaped([b"".join(msgs)])
    assert out == ordinary([b"".join(msgs)])
    assert r.fast == 0 and r.compiled[(RTM_NEWLINK, len(msgs[0]))] == GIVE_UP


def test_message_ends_steps_over_runs_and_still_sees_done_errors_and_intr() -> None:
    routes = b"".join(route4(i, 1, 2) for i in range(500))
    assert message_ends(routes) == (False, None, 0)
    assert message_ends(routes + DONE) == (True, None, 0)
    intr = msg(RTM_NEWROUTE, route4(1, 1, 2)[16:], flags=MULTI | 0x10)
    assert message_ends(routes + intr + routes) == (False, None, 0x10)
    err = msg(2, struct.pack("=i", -22) + route4(1, 1, 2)[:16])
    assert message_ends(routes + err) == (True, 22, 0)
    assert message_ends(routes + msg(3, struct.pack("=i", -16))) == (True, 16, 0)
    assert message_ends(routes[:-3]) == (False, None, 0)


def test_addresses_of_a_run_read_at_once_equal_those_read_one_by_one() -> None:
    from rawlab.sockets.netlink import _address_of, _run_addresses
    from rawlab.sockets.netlink_wire import message_runs, messages

    def addr_msg(family: int, local: bytes | None, address: bytes, label: bytes) -> bytes:
        body = struct.pack("=BBBBI", family, 24, 0x80, 0, 7) + attr(1, address)
        if local is not None:
            body += attr(2, local)
        return msg(RTM_NEWADDR, body + attr(3, label) + attr(8, struct.pack("=I", 0x80)))

    v4 = [addr_msg(2, bytes((10, 1, i >> 8, i & 255)), bytes((10, 1, i >> 8, i & 255)),
                   b"dum1\0") for i in range(300)]
    peer = addr_msg(2, bytes((10, 9, 0, 1)), bytes((10, 9, 0, 2)), b"dum1\0")  # same length
    same_len_other_layout = addr_msg(2, None, bytes((10, 8, 0, 1)), b"dummy-interface\0")
    v6 = [addr_msg(10, None, bytes(15) + bytes((i,)), b"") for i in range(1, 50)]
    buf = b"".join([*v4[:100], peer, *v4[100:], same_len_other_layout, *v6]) + DONE
    assert len(same_len_other_layout) == len(peer)
    fast: set[bytes] = set()
    for off, step, count in message_runs(buf):
        if struct.unpack_from("=IH", buf, off)[1] == RTM_NEWADDR:
            _run_addresses(buf, off, step, count, fast)
    slow = {a for m in messages(buf) if m.type == RTM_NEWADDR
            if (a := _address_of(buf, m.offset, m.end)) is not None}
    assert fast == slow
    assert len(fast) == 300 + 1 + 1 + 49
    assert bytes((10, 9, 0, 1)) in fast and bytes((10, 9, 0, 2)) not in fast  # IFA_LOCAL first
    assert bytes((10, 8, 0, 1)) in fast
