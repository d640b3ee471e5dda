"""sock_diag and genl replies parsed from bytes built with struct; their text and JSON."""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rawlab.decode import genl
from rawlab.decode import sock_diag as sd
from rawlab.errors import Exit, RawlabError
from rawlab.present import diag as present
from rawlab.sockets import diag
from rawlab.sockets import genl as genl_request
from rawlab.sockets.netlink import NetlinkError
from rawlab.sockets.netlink_wire import NlMsg, messages, nlattr, nlmsg


def reply(payload: bytes, mtype: int = diag.SOCK_DIAG_BY_FAMILY) -> NlMsg:
    (m,) = messages(nlmsg(mtype, 2, 1, 0, payload))
    return m


def inet_msg(state: int, sport: int, dport: int, src: str, dst: str, *, rq: int = 0,
             wq: int = 0, inode: int = 4242, family: int = socket.AF_INET) -> bytes:
    pack = socket.inet_pton(family, src).ljust(16, b"\0"), \
        socket.inet_pton(family, dst).ljust(16, b"\0")
    return sd.INET_DIAG_MSG.pack(family, state, 0, 0, sport.to_bytes(2, "big"),
                                   dport.to_bytes(2, "big"), *pack, 0, 77, 0, rq, wq,
                                   1000, inode)


def test_request_sizes() -> None:
    assert diag.INET_DIAG_REQ_V2.size == 56
    assert sd.INET_DIAG_MSG.size == 72
    assert diag.UNIX_DIAG_REQ.size == 24 and sd.UNIX_DIAG_MSG.size == 16
    assert diag.VSOCK_DIAG_REQ.size == 24 and sd.VSOCK_DIAG_MSG.size == 32
    assert diag.NETLINK_DIAG_REQ.size == 20 and sd.NETLINK_DIAG_MSG.size == 28
    assert diag.PACKET_DIAG_REQ.size == 20 and sd.PACKET_DIAG_MSG.size == 16


def test_inet_request_fields() -> None:
    raw = diag.inet_request(socket.AF_INET6, socket.IPPROTO_TCP, diag.SS_CONN, diag.EXT_INFO)
    fam, proto, ext, states = struct.unpack_from("=BBBxI", raw)
    assert (fam, proto, states) == (socket.AF_INET6, socket.IPPROTO_TCP, diag.SS_CONN)
    assert ext & diag.ext_bit(diag.INET_DIAG_INFO) and ext & diag.ext_bit(diag.INET_DIAG_CONG)
    assert raw[-8:] == b"\xff" * 8  # INET_DIAG_NOCOOKIE


def test_ss_state_masks() -> None:
    assert diag.SS_CONN == 0x3FFF & ~(1 << 10 | 1 << 7 | 1 << 6 | 1 << 3)
    assert diag.states_for("tcp") == diag.SS_CONN
    assert diag.states_for("tcp", listening=True) == 1 << diag.TCP_LISTEN
    assert diag.states_for("udp", listening=True) == 1 << diag.TCP_CLOSE
    assert diag.states_for("netlink") == diag.SS_ALL
    assert diag.states_for("tcp", explicit=4, listening=True) == 4
    assert diag.parse_states(["established", "LISTENING"]) == (1 << 1) | (1 << 10)
    assert diag.parse_states(["connected"]) & (1 << diag.TCP_TIME_WAIT)
    with pytest.raises(RawlabError) as ei:
        diag.parse_states(["nope"])
    assert ei.value.code == Exit.USAGE


def test_inet_with_info_cong_bbr_skmem() -> None:
    from test_diag_tcp_info import golden_bytes

    payload = (inet_msg(1, 5001, 40000, "10.1.2.3", "10.1.2.4", rq=5, wq=6)
               + nlattr(diag.INET_DIAG_SHUTDOWN, b"\x02")
               + nlattr(diag.INET_DIAG_INFO, golden_bytes())
               + nlattr(diag.INET_DIAG_CONG, b"bbr\0")
               + nlattr(diag.INET_DIAG_BBRINFO, struct.pack("=IIIII", 5, 1, 900, 739, 512))
               + nlattr(diag.INET_DIAG_SKMEMINFO, struct.pack("=9I", *range(9)))
               + nlattr(99, b"\xaa\xbb"))
    s = sd.parse_inet(reply(payload), socket.IPPROTO_TCP)
    assert s is not None
    assert s.local == sd.InetAddr(ipaddress.IPv4Address("10.1.2.3"), 5001, 0)
    assert s.peer.port == 40000 and (s.recv_q, s.send_q, s.uid, s.inode) == (5, 6, 1000, 4242)
    assert s.cookie == 77 and s.shutdown == 2 and s.cong == "bbr"
    assert s.cc_kind == "bbr" and s.cc_info == {"bw": (1 << 32) | 5, "min_rtt": 900,
                                                "pacing_gain": 739, "cwnd_gain": 512}
    assert s.skmeminfo is not None and s.skmeminfo["drops"] == 8
    assert s.tcp_info is not None and s.tcp_info.rcv_wscale == 14
    assert s.attrs[99] == b"\xaa\xbb"  # unknown attribute kept
    line = present.tcp_info_text(s)
    assert "wscale:7,14" in line and line.startswith("bbr ")
    assert "bbr:(bw:" in line and "skmem:(r0,rb1,t2,tb3,f4,w5,o6,bl7,d8)" in line
    j = present.socket_json(s)
    assert j["tcp_info"]["snd_wscale"] == 7 and j["tcp_info"]["rcv_wscale"] == 14
    assert j["tcp_info_len"] == 280 and j["state"] == "ESTAB" and j["cong"] == "bbr"
    assert j["local"] == {"addr": "10.1.2.3", "port": 5001}
    json.dumps(j)


def test_inet6_listen_text() -> None:
    s = sd.parse_inet(reply(inet_msg(10, 80, 0, "::1", "::", family=socket.AF_INET6)),
                        socket.IPPROTO_TCP)
    assert s is not None
    row = present.socket_row(s)
    assert row[:7] == ["tcp", "STREAM", "LISTEN", "0", "0", "[::1]:80", "[::]:*"]


def test_vegas_dctcp() -> None:
    assert sd.cc_info(diag.INET_DIAG_DCTCPINFO, struct.pack("=HHIII", 1, 0, 1024, 3, 4)) == (
        "dctcp", {"enabled": 1, "ce_state": 0, "alpha": 1024, "ab_ecn": 3, "ab_tot": 4})
    assert sd.cc_info(diag.INET_DIAG_VEGASINFO, struct.pack("=IIII", 0, 1, 2, 3))[0] == "vegas"
    assert sd.cc_info(diag.INET_DIAG_BBRINFO, b"short") is None


def test_unix_named_pair() -> None:
    payload = (sd.UNIX_DIAG_MSG.pack(socket.AF_UNIX, socket.SOCK_STREAM, 1, 100, 9)
               + nlattr(sd.UNIX_DIAG_NAME, b"\0rawlab-test")
               + nlattr(sd.UNIX_DIAG_PEER, struct.pack("=I", 101))
               + nlattr(sd.UNIX_DIAG_RQLEN, struct.pack("=II", 3, 4))
               + nlattr(sd.UNIX_DIAG_UID, struct.pack("=I", 0)))
    s = sd.parse_unix(reply(payload))
    assert s is not None
    assert s.local == sd.UnixAddr(b"\0rawlab-test", 100) and s.peer.inode == 101
    assert (s.recv_q, s.send_q, s.uid) == (3, 4, 0)
    row = present.socket_row(s)
    assert row[5] == "@rawlab-test 100" and row[6] == "* 101"
    assert present.socket_json(s)["local"] == {"path": "@rawlab-test", "abstract": True,
                                               "inode": 100}


def test_vsock_types_by_name() -> None:
    for stype, name in ((socket.SOCK_STREAM, "STREAM"), (5, "SEQPACKET"),
                        (socket.SOCK_DGRAM, "DGRAM")):
        raw = sd.VSOCK_DIAG_MSG.pack(40, stype, 10, 0, 1, 1234, 0xFFFFFFFF, 0xFFFFFFFF, 55, 3)
        s = sd.parse_vsock(reply(raw))
        assert s is not None and s.netid == "vsock"
        row = present.socket_row(s)
        assert row[:3] == ["vsock", name, "LISTEN"] and row[5:7] == ["1:1234", "*:*"]
        assert present.socket_json(s)["type"] == name.lower()
    assert sd.parse_vsock(reply(b"\0" * 31)) is None


def test_netlink_and_packet() -> None:
    raw = (sd.NETLINK_DIAG_MSG.pack(16, socket.SOCK_RAW, 0, 7, 4321, 0, 0, 88, 1)
           + nlattr(sd.NETLINK_DIAG_GROUPS, struct.pack("=I", 0b101)))
    s = sd.parse_netlink(reply(raw))
    assert s is not None and s.extra["groups"] == [1, 3]
    assert present.socket_row(s)[5] == "route:4321"
    raw = (sd.PACKET_DIAG_MSG.pack(17, socket.SOCK_RAW, 0x0003, 99, 2)
           + nlattr(sd.PACKET_DIAG_INFO, sd.PACKET_DIAG_INFO_S.pack(2, 2, 0, 0, 0, 1)))
    p = sd.parse_packet(reply(raw))
    assert p is not None and p.local == sd.PacketEnd(3, 2) and p.extra["version"] == 2
    assert present.socket_row(p, ifnames={2: "veth0"})[5] == "ALL:veth0"


def test_vsock_diag_missing_says_modprobe() -> None:
    err = diag.diag_error(diag.AF_VSOCK, NetlinkError(errno.ENOENT, None))
    assert err.code == Exit.UNSUPPORTED and "modprobe vsock_diag" in err.message
    assert "\n" not in err.message


def test_table_aligns_and_header() -> None:
    socks = [sd.parse_inet(reply(inet_msg(1, p, 9, "127.0.0.1", "127.0.0.1")), 6)
             for p in (1, 65535)]
    lines = list(present.socket_table([s for s in socks if s is not None]))
    assert lines[0].split()[:5] == ["Netid", "Type", "State", "Recv-Q", "Send-Q"]
    assert len({ln.index("127.0.0.1") for ln in lines[1:]}) == 1


def genl_family_msg() -> bytes:
    ops = nlattr(1, nlattr(1, struct.pack("=I", 3)) + nlattr(2, struct.pack("=I", 0xE))) \
        + nlattr(2, nlattr(1, struct.pack("=I", 10)) + nlattr(2, struct.pack("=I", 0xC)))
    grps = nlattr(1, nlattr(1, b"notify\0") + nlattr(2, struct.pack("=I", 0x10)))
    return (genl_request.GENLMSGHDR.pack(1, 2, 0) + nlattr(1, struct.pack("=H", 16))
            + nlattr(2, b"nlctrl\0") + nlattr(3, struct.pack("=I", 2))
            + nlattr(4, struct.pack("=I", 0)) + nlattr(5, struct.pack("=I", 10))
            + nlattr(6 | 0x8000, ops) + nlattr(7 | 0x8000, grps) + nlattr(42, b"x"))


def test_genl_family() -> None:
    f = genl.parse_family(reply(genl_family_msg(), 16))
    assert f is not None
    assert (f.id, f.name, f.version, f.hdrsize, f.maxattr) == (16, "nlctrl", 2, 0, 10)
    assert f.ops == [genl.GenlOp(3, 0xE), genl.GenlOp(10, 0xC)]
    assert f.mcast_groups == [genl.GenlGroup("notify", 16)]
    assert f.attrs == {42: b"x"}
    text = "\n".join(present.genl_text([f]))
    assert "Name: nlctrl" in text and "ID: 0x10  Version: 0x2" in text
    assert "can doit; can dumpit; has policy" in text and "ID-0x10  name: notify" in text
    j = present.genl_json(f)
    assert j["ops"][0]["flag_names"] == ["do", "dump", "has_policy"]
    assert j["unknown_attrs"] == [{"type": 42, "hex": "78"}]


@given(st.binary(max_size=200))
def test_malformed_replies_never_raise(raw: bytes) -> None:
    for parse in (lambda r: sd.parse_inet(r, 6), sd.parse_unix, sd.parse_vsock,
                  sd.parse_netlink, sd.parse_packet, genl.parse_family):
        s = parse(reply(raw))
        if isinstance(s, sd.DiagSocket):
            present.socket_row(s)
            json.dumps(present.socket_json(s))
            present.tcp_info_text(s)


def test_the_compiled_exact_lookup_answers_as_the_netlink_request_does() -> None:
    """DiagLookup.find (one compiled call) and the plain request on a real socket pair:
    the same state, inode, uid, cookie and cgroup id; None for a 4-tuple no socket has."""
    import os

    from rawlab.sockets.diag import (
        INET_DIAG_MSG,
        SOCK_DIAG_BY_FAMILY,
        DiagLookup,
        inet_socket,
        lookup_request,
    )
    from rawlab.sockets.netlink import NLM_F_REQUEST
    from rawlab.sockets.netlink_wire import attr_map

    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen()
    c = socket.create_connection(lst.getsockname())
    a, _ = lst.accept()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.connect(lst.getsockname())
    with lst, c, a, u, DiagLookup() as look:
        for s, proto in ((c, socket.IPPROTO_TCP), (a, socket.IPPROTO_TCP),
                         (u, socket.IPPROTO_UDP)):
            (la, lp), (ra, rp) = s.getsockname(), s.getpeername()
            args = (socket.AF_INET, proto, socket.inet_aton(la), lp, socket.inet_aton(ra), rp)
            got = look.find(*args)
            plain = look._nl.request(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, lookup_request(*args))
            assert got is not None and got == inet_socket(plain[0].payload)
            f = INET_DIAG_MSG.unpack_from(plain[0].payload)  # the struct, read apart
            assert (got.state, got.inode, got.uid, got.cookie) == (f[1], f[14], f[13], f[9])
            cg = attr_map(plain[0].payload, INET_DIAG_MSG.size).get(21, b"")  # CGROUP_ID
            assert got.cgroup_id == (struct.unpack_from("=Q", cg)[0] if len(cg) >= 8 else None)
            assert got.inode == os.fstat(s.fileno()).st_ino and got.uid == os.getuid()
            assert got.cookie and got.state == 1  # (a connected UDP socket too)
        (la, lp), (ra, _rp) = c.getsockname(), c.getpeername()
        assert look.find(socket.AF_INET, socket.IPPROTO_TCP, socket.inet_aton(la), lp,
                         socket.inet_aton(ra), 1) is None


def test_destroy_messages_are_read_from_one_datagram() -> None:
    """diag_destroyed on a datagram as the destroy groups send it: an IPv4 TCP and an
    IPv6 UDP socket (inet_diag_msg + INET_DIAG_PROTOCOL), a message of another type and
    a cut one skipped."""
    from rawlab._kernels import diag_destroyed

    from rawlab.sockets.diag import INET_DIAG_MSG, INET_DIAG_PROTOCOL, Destroyed

    def msg(fam: int, proto: int | None, src: bytes, sport: int, dst: bytes, dport: int,
            cookie: int, mtype: int = 20) -> bytes:
        body = INET_DIAG_MSG.pack(fam, 7, 0, 0, sport.to_bytes(2, "big"),
                                  dport.to_bytes(2, "big"), src.ljust(16, b"\0"),
                                  dst.ljust(16, b"\0"), 0, cookie, 0, 0, 0, 0, 0)
        if proto is not None:
            body += struct.pack("=HHB3x", 5, INET_DIAG_PROTOCOL, proto)
        return struct.pack("=IHHII", 16 + len(body), mtype, 0, 0, 0) + body

    v4 = msg(socket.AF_INET, 6, bytes([10, 0, 0, 1]), 40000, bytes([10, 0, 0, 2]), 80, 1 << 40)
    v6 = msg(socket.AF_INET6, 17, bytes(15) + b"\1", 5353, bytes(16), 0, 7)
    other = msg(socket.AF_INET, 6, bytes(4), 1, bytes(4), 2, 3, mtype=3)
    bare = msg(socket.AF_INET, None, bytes([1, 2, 3, 4]), 9, bytes([5, 6, 7, 8]), 10, 11)
    got = [Destroyed._make(t) for t in diag_destroyed(v4 + other + v6 + bare + v4[:40])]
    assert got == [
        Destroyed(socket.AF_INET, 6, bytes([10, 0, 0, 1]), 40000, bytes([10, 0, 0, 2]), 80,
                  1 << 40),
        Destroyed(socket.AF_INET6, 17, bytes(15) + b"\1", 5353, bytes(16), 0, 7),
        Destroyed(socket.AF_INET, 0, bytes([1, 2, 3, 4]), 9, bytes([5, 6, 7, 8]), 10, 11),
    ]
    assert diag_destroyed(b"") == [] and diag_destroyed(b"\xff" * 15) == []
