"""Netlink (nlmsghdr + attribute tree) and vsockmon golden bytes, checked against construct."""

from __future__ import annotations

import struct

import pytest

from rawlab.decode.dispatch import Decoder
from rawlab.decode.netlink import NLATTR, NLMSGHDR, Netlink, attr_tree, parse_attrs
from rawlab.decode.rtnl import fixed_header_len
from rawlab.decode.vsockmon import AF_VSOCKMON_HDR, VIRTIO_VSOCK_HDR, Vsockmon
from rawlab.sockets.netlink_wire import NLA_F_NESTED, NLMSG_DONE, NLMSG_ERROR

pytestmark = pytest.mark.unit


def nla(t: int, value: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), t) + value
    return raw + b"\x00" * (-len(raw) % 4)


def nlmsg(t: int, flags: int, seq: int, pid: int, body: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), t, flags, seq, pid) + body


# RTM_NEWLINK: ifinfomsg (16 bytes) + IFLA_IFNAME "lo" + IFLA_MTU + nested IFLA_LINKINFO
IFINFO = struct.pack("=BxHiII", 0, 772, 1, 0x49, 0)
LINKINFO = nla(1, b"veth\x00")
NEWLINK = nlmsg(16, 0x0, 7, 1234, IFINFO + nla(3, b"lo\x00") + nla(4, struct.pack("=I", 65536))
                + nla(18 | NLA_F_NESTED, LINKINFO))
SLL_NETLINK = struct.pack("!HHH8sH", 4, 824, 0, bytes(8), 0)  # family 0: NETLINK_ROUTE


def test_netlink_message_and_attribute_tree() -> None:
    nl = Netlink(NEWLINK + nlmsg(NLMSG_DONE, 2, 7, 1234, struct.pack("=i", 0)), family=0)
    assert len(nl.messages) == 2 and not nl.truncated and not nl.malformed
    m = nl.messages[0]
    assert (m.len, m.type, m.flags, m.seq, m.pid, m.offset) == (len(NEWLINK), 16, 0, 7, 1234, 0)
    parsed = NLMSGHDR.parse(NEWLINK)
    assert {k: parsed[k] for k in m.fields()} == m.fields()
    attrs = attr_tree(m)
    assert [a.type for a in attrs] == [3, 4, 18]
    assert attrs[0].data == b"lo\x00" and attrs[0].offset == 32 and attrs[0].length == 7
    assert struct.unpack("=I", attrs[1].data)[0] == 65536
    assert attrs[2].nested_flag and attrs[2].children is not None
    kid = attrs[2].children[0]
    assert (kid.type, kid.data, kid.offset) == (1, b"veth\x00", attrs[2].offset + 4)
    assert NLATTR.parse(NEWLINK[32:]).value == b"lo\x00"
    assert nl.messages[1].type == NLMSG_DONE and nl.messages[1].offset == len(NEWLINK)


def test_netlink_via_dispatch_linktype_253() -> None:
    p = Decoder().decode(SLL_NETLINK + NEWLINK, 253)
    assert p.names == ("sll", "netlink")
    assert p["netlink"].family == 0 and attr_tree(p["netlink"].messages[0])[0].data == b"lo\x00"


def test_netlink_error_message() -> None:
    err = nlmsg(NLMSG_ERROR, 0, 1, 0, struct.pack("=i", -17) + NEWLINK[:16])
    m = Netlink(err, 0).messages[0]
    assert m.error == -17 and attr_tree(m) == ()


def test_netlink_truncated_and_overlong() -> None:
    nl = Netlink(NEWLINK[:-6], 0)
    assert nl.messages[0].truncated and nl.truncated
    nl = Netlink(struct.pack("=IHHII", 8, 16, 0, 0, 0), 0)
    assert nl.malformed
    nl = Netlink(b"\x01\x02", 0)
    assert nl.truncated and nl.messages == ()
    attrs, trunc, bad = parse_attrs(struct.pack("=HH", 40, 1) + b"abcd", 0, 8)
    assert trunc and attrs[0].truncated and attrs[0].data == b"abcd"
    attrs, trunc, bad = parse_attrs(struct.pack("=HH", 2, 1) + b"abcd", 0, 8)
    assert bad and attrs[0].malformed


def test_unknown_family_keeps_raw_body() -> None:
    m = Netlink(nlmsg(0x20, 0, 1, 2, b"\x01\x02\x03\x04"), family=99).messages[0]
    assert attr_tree(m) == () and m.payload == b"\x01\x02\x03\x04"
    assert fixed_header_len(99, 0x20) is None and fixed_header_len(16, 0x20) == 4


def test_nested_on_demand() -> None:
    a = parse_attrs(nla(5, nla(1, b"\x01\x00\x00\x00")), 0, 12)[0][0]
    assert a.children is None
    kids = a.nested()
    assert kids is not None and kids[0].type == 1
    assert parse_attrs(nla(5, b"\xff\xff\xff"), 0, 8)[0][0].nested() is None


def vsock_record(payload: bytes = b"hello") -> bytes:
    virtio = struct.pack("<QQIIIHHIII", 3, 2, 1024, 5000, len(payload), 1, 5, 0, 262144, 17)
    mon = struct.pack("<QQIIHHH2s", 3, 2, 1024, 5000, 4, 2, len(virtio), b"\x00\x00")
    return mon + virtio + payload


def test_vsockmon_golden_and_construct() -> None:
    rec = vsock_record()
    v = Vsockmon(rec)
    assert (v.src_cid, v.dst_cid, v.src_port, v.dst_port, v.op, v.transport, v.len) == (
        3, 2, 1024, 5000, 4, 2, 44)
    assert v.virtio is not None
    assert (v.virtio.len, v.virtio.type, v.virtio.op, v.virtio.buf_alloc, v.virtio.fwd_cnt) == (
        5, 1, 5, 262144, 17)
    assert bytes(v.payload) == b"hello" and not v.truncated and not v.malformed
    mon = AF_VSOCKMON_HDR.parse(rec)
    assert {k: mon[k] for k in ("src_cid", "dst_cid", "src_port", "dst_port", "op",
                                "transport", "len")} == {
        k: getattr(v, k) for k in ("src_cid", "dst_cid", "src_port", "dst_port", "op",
                                   "transport", "len")}
    vh = VIRTIO_VSOCK_HDR.parse(rec[32:])
    assert {k: vh[k] for k in v.virtio.fields()} == v.virtio.fields()
    p = Decoder().decode(rec, 271)
    assert p.names == ("vsock",)


def test_vsockmon_truncated_and_malformed() -> None:
    v = Vsockmon(vsock_record()[:50])
    assert v.truncated and v.virtio is None
    bad = bytearray(vsock_record())
    bad[28:30] = struct.pack("<H", 8)  # virtio transport but 8-byte header
    assert Vsockmon(bytes(bad)).malformed
    assert Vsockmon(b"").truncated
