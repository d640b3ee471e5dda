"""rtnetlink decoding: names agree with pyroute2; unknowns survive; bad bytes never raise."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rawlab.decode import rtnl
from rawlab.present import netlink as fmt

pytestmark = pytest.mark.unit


def attr(atype: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), atype) + payload
    return raw + b"\0" * (-len(raw) % 4)


def msg(mtype: int, body: bytes, *, flags: int = 0, seq: int = 1, pid: int = 0) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), mtype, flags, seq, pid) + body


def route_msg(**kw: int) -> bytes:
    body = struct.pack("=BBBBBBBBI", 2, 24, 0, 0, 254, 4, 0, 1, 0)
    body += attr(15, struct.pack("=I", 254)) + attr(1, bytes([10, 1, 2, 0]))
    body += attr(5, bytes([10, 0, 0, 1])) + attr(4, struct.pack("=I", 3))
    return msg(24, body, flags=0x600, **kw)


def test_importing_the_decoder_does_not_import_pyroute2() -> None:
    code = ("import sys, rawlab.decode.rtnl, rawlab.present.netlink, rawlab.analysis.netlink; "
            "print(any(m.startswith('pyroute2') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_route_fields_and_attrs() -> None:
    (m,) = rtnl.decode_buffer(route_msg(seq=7, pid=42))
    assert (rtnl.type_name(m.type), m.flags, m.seq, m.pid, m.family) == (
        "RTM_NEWROUTE", 0x600, 7, 42, 2)
    assert m.header == {"family": 2, "dst_len": 24, "src_len": 0, "tos": 0, "table": 254,
                        "proto": 4, "scope": 0, "type": 1, "flags": 0}
    assert m.attrs["RTA_TABLE"] == 254 and m.attrs["RTA_OIF"] == 3
    assert isinstance(m.attrs["RTA_DST"], rtnl.IpAddr) and m.ok
    j = fmt.msg_json(m)
    assert j["nlmsg_type"] == "RTM_NEWROUTE" and j["nlmsg_flags_names"] == ["EXCL", "CREATE"]
    assert j["attrs"] == {"RTA_TABLE": 254, "RTA_DST": "10.1.2.0", "RTA_GATEWAY": "10.0.0.1",
                          "RTA_OIF": 3}
    assert fmt.body_text(m, {3: "eth9"}.get) == "10.1.2.0/24 via 10.0.0.1 dev eth9 proto static"


def test_agrees_with_pyroute2_encoding() -> None:
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    r = rtmsg()
    r["family"], r["dst_len"], r["table"], r["proto"], r["type"] = 10, 64, 254, 3, 1
    r["attrs"] = [("RTA_DST", "2001:db8::"), ("RTA_GATEWAY", "fe80::1"), ("RTA_OIF", 4),
                  ("RTA_PRIORITY", 1024), ("RTA_METRICS", {"attrs": [("RTAX_MTU", 1400)]})]
    a = ifaddrmsg()
    a["family"], a["prefixlen"], a["index"] = 2, 24, 5
    a["attrs"] = [("IFA_LOCAL", "192.0.2.7"), ("IFA_LABEL", "eth0"),
                  ("IFA_CACHEINFO", {"ifa_preferred": 1, "ifa_valid": 2, "cstamp": 3,
                                     "tstamp": 4})]
    li = ifinfmsg()
    li["index"], li["flags"] = 9, 0x1043
    li["attrs"] = [("IFLA_IFNAME", "veth9"), ("IFLA_MTU", 9000),
                   ("IFLA_ADDRESS", "02:00:00:00:00:09"),
                   ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth")]})]
    for mtype, m in ((24, r), (20, a), (16, li)):
        m["header"]["type"] = mtype
        m.encode()
        raw = bytes(m.data[: m["header"]["length"]])
        (ours,) = rtnl.decode_buffer(raw)
        theirs = type(m)(raw)
        theirs.decode()
        assert ours.ok and ours.type == mtype
        j = fmt.msg_json(ours)["attrs"]
        for name, value in theirs["attrs"]:
            if isinstance(value, dict) or hasattr(value, "get_attrs"):
                continue
            assert j[name] == value, name
    (route,) = rtnl.decode_buffer(bytes(r.data[: r["header"]["length"]]))
    assert route.attrs["RTA_METRICS"] == {"RTAX_MTU": 1400}
    (link,) = rtnl.decode_buffer(bytes(li.data[: li["header"]["length"]]))
    assert link.attrs["IFLA_LINKINFO"] == {"IFLA_INFO_KIND": "veth"}
    (addr,) = rtnl.decode_buffer(bytes(a.data[: a["header"]["length"]]))
    assert addr.attrs["IFA_CACHEINFO"] == {"ifa_preferred": 1, "ifa_valid": 2, "cstamp": 3,
                                           "tstamp": 4}


def test_unknown_attribute_keeps_number_and_bytes() -> None:
    body = struct.pack("=BxHiII", 0, 1, 2, 0, 0) + attr(3, b"lo\0") + attr(250, b"\x01\x02\x03")
    (m,) = rtnl.decode_buffer(msg(16, body))
    assert m.attrs["IFLA_IFNAME"] == "lo"
    assert m.attrs["250"] == rtnl.Unknown(250, b"\x01\x02\x03")
    assert fmt.msg_json(m)["attrs"]["250"] == {"type": 250, "hex": "010203"}


def test_repeated_attribute_becomes_a_list() -> None:
    body = struct.pack("=BxHiII", 0, 1, 2, 0, 0) + attr(53, b"alt1\0") + attr(53, b"alt2\0")
    (m,) = rtnl.decode_buffer(msg(16, body))
    assert list(m.attrs["IFLA_ALT_IFNAME"]) == ["alt1", "alt2"]


def test_a_repeated_link_kind_leaves_the_kind_data_undecoded_not_the_message_lost() -> None:
    info = attr(1, b"veth\0") + attr(1, b"bond\0") + attr(2 | 0x8000, attr(1, b"\1\0\0\0"))
    body = struct.pack("=BxHiII", 0, 1, 2, 0, 0) + attr(18 | 0x8000, info)
    m, nxt = rtnl.decode_message(msg(16, body), 0)
    assert m.ok and nxt == len(msg(16, body))
    li = m.attrs["IFLA_LINKINFO"]
    assert list(li["IFLA_INFO_KIND"]) == ["veth", "bond"]
    assert li["IFLA_INFO_DATA"] == {"1": rtnl.Unknown(1, b"\1\0\0\0")}
    (again,) = rtnl.decode_buffer(msg(16, body))
    assert again.attrs == m.attrs


def test_multipath_route() -> None:
    nh1 = attr(5, bytes([10, 0, 0, 1]))
    nh2 = attr(5, bytes([10, 0, 0, 2]))
    mp = struct.pack("=HBBi", 8 + len(nh1), 0, 0, 3) + nh1 + struct.pack(
        "=HBBi", 8 + len(nh2), 0, 1, 4) + nh2
    body = struct.pack("=BBBBBBBBI", 2, 0, 0, 0, 254, 4, 0, 1, 0) + attr(9, mp)
    (m,) = rtnl.decode_buffer(msg(24, body))
    hops = m.attrs["RTA_MULTIPATH"]
    assert [(h["oif"], h["hops"]) for h in hops] == [(3, 0), (4, 1)]
    assert fmt.jsonable(hops[1]["attrs"]) == {"RTA_GATEWAY": "10.0.0.2"}
    assert "nexthop via 10.0.0.2 dev if4 weight 2" in fmt.body_text(m)


def test_several_messages_error_and_done() -> None:
    orig = struct.pack("=IHHII", 32, 24, 5, 9, 0)
    ext = attr(1, b"Nexthop has invalid gateway\0")
    err = msg(2, struct.pack("=i", -22) + orig + ext, flags=0x100 | 0x200, seq=9)
    buf = route_msg() + err + msg(3, struct.pack("=i", 0), flags=2)
    a, b, c = rtnl.decode_buffer(buf)
    assert [rtnl.type_name(m.type) for m in (a, b, c)] == ["RTM_NEWROUTE", "NLMSG_ERROR",
                                                            "NLMSG_DONE"]
    assert b.error == -22 and b.extack == "Nexthop has invalid gateway"
    assert fmt.msg_json(b)["errno"] == "EINVAL"
    assert fmt.body_text(b) == "error EINVAL: Nexthop has invalid gateway"


def test_truncated_and_overlong_are_flagged_not_raised() -> None:
    whole = route_msg()
    (m,) = rtnl.decode_buffer(whole[:-3])
    assert not m.ok and m.attrs["RTA_TABLE"] == 254
    bad = bytearray(whole)
    struct.pack_into("=H", bad, 28, 2)  # attribute length below its header
    (m,) = rtnl.decode_buffer(bytes(bad))
    assert not m.ok


def test_layout_offsets_match_bytes() -> None:
    raw = route_msg()
    rows = fmt.layout(raw, 0)
    assert any(r.strip().startswith("nlmsg_type = 24 (RTM_NEWROUTE)") for r in rows)
    dst = next(r for r in rows if "RTA_DST (dst) = 10.1.2.0" in r)
    off = int(dst.split("|")[1].split()[0])
    assert raw[off + 4 : off + 8] == bytes([10, 1, 2, 0])


def test_netconf_named_without_pyroute2_map() -> None:
    body = struct.pack("=Bxxx", 2) + attr(1, struct.pack("=i", 4)) + attr(2, struct.pack("=i", 1))
    (m,) = rtnl.decode_buffer(msg(80, body))
    assert m.attrs == {"NETCONFA_IFINDEX": 4, "NETCONFA_FORWARDING": 1}


def test_other_families_keep_attribute_numbers() -> None:
    # a generic netlink family whose id nothing names (nlctrl, 16, is named: family maps)
    body = struct.pack("=BBH", 3, 1, 0) + attr(2, b"nlctrl\0")
    (m,) = rtnl.decode_buffer(msg(0x30, body), protocol=16)
    assert m.attrs["2"] == rtnl.Unknown(2, b"nlctrl\0")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300), mtype=st.sampled_from([16, 17, 20, 24, 28, 32, 80, 88,
                                                            2, 3, 99, 0xFFFF]))
def test_random_bytes_never_raise(data: bytes, mtype: int) -> None:
    for buf in (data, msg(mtype, data), msg(mtype, data)[: len(data) // 2 + 16]):
        for m in rtnl.decode_buffer(buf):
            json.dumps(fmt.msg_json(m))
            fmt.line(m)
            fmt.layout(m.buf, m.offset)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=12),
       st.sampled_from([16, 20, 24, 28, 32, 88]))
def test_random_attributes_never_raise(attrs: list[tuple[int, bytes]], mtype: int) -> None:
    hdr = {16: 16, 20: 8, 24: 12, 28: 12, 32: 12, 88: 4}[mtype]
    body = bytes([2]) + b"\0" * (hdr - 1) + b"".join(attr(t, p) for t, p in attrs)
    for m in rtnl.decode_buffer(msg(mtype, body)):
        json.dumps(fmt.msg_json(m))
        fmt.line(m)
        fmt.layout(m.buf, m.offset)
