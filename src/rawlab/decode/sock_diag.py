"""sock_diag replies (NETLINK_SOCK_DIAG): the sockets `ss` lists, as records.

    for s in sockets_of(diag.collect(["tcp"], [socket.AF_INET])):   # raw replies, decoded
        s.state, s.local, s.peer, s.recv_q, s.tcp_info.rtt, s.cong

One parser per reply: ``inet_diag_msg`` (TCP, UDP over IPv4/IPv6),
``unix_diag_msg``, ``vsock_diag_msg``, ``netlink_diag_msg``, ``packet_diag_msg``,
each with its attributes (the wire module's walk). Replies become
:class:`DiagSocket` records of ints, bytes and addresses; only ``present/``
formats them. Unknown attributes stay in ``attrs`` as bytes. The requests and
the I/O are :mod:`rawlab.sockets.diag`'s.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from rawlab.decode.tcp_info import TcpInfo
from rawlab.sockets.diag import (
    INET_DIAG_BBRINFO,
    INET_DIAG_CGROUP_ID,
    INET_DIAG_CONG,
    INET_DIAG_DCTCPINFO,
    INET_DIAG_INFO,
    INET_DIAG_MARK,
    INET_DIAG_MEMINFO,
    INET_DIAG_MSG,
    INET_DIAG_SHUTDOWN,
    INET_DIAG_SKMEMINFO,
    INET_DIAG_SKV6ONLY,
    INET_DIAG_TCLASS,
    INET_DIAG_TOS,
    INET_DIAG_VEGASINFO,
    DiagDump,
)
from rawlab.sockets.netlink_wire import NLMSG_HDRLEN, NlMsg, attr_map

# unix_diag attributes
UNIX_DIAG_NAME, UNIX_DIAG_VFS, UNIX_DIAG_PEER, UNIX_DIAG_ICONS = 0, 1, 2, 3
UNIX_DIAG_RQLEN, UNIX_DIAG_MEMINFO, UNIX_DIAG_SHUTDOWN, UNIX_DIAG_UID = 4, 5, 6, 7
# netlink_diag attributes
NETLINK_DIAG_MEMINFO, NETLINK_DIAG_GROUPS, NETLINK_DIAG_FLAGS = 0, 1, 4
# packet_diag attributes
PACKET_DIAG_INFO, PACKET_DIAG_MCLIST, PACKET_DIAG_RX_RING, PACKET_DIAG_TX_RING = 0, 1, 2, 3
PACKET_DIAG_FANOUT, PACKET_DIAG_UID, PACKET_DIAG_MEMINFO, PACKET_DIAG_FILTER = 4, 5, 6, 7

SK_MEMINFO_NAMES = ("rmem_alloc", "rcvbuf", "wmem_alloc", "sndbuf", "fwd_alloc",
                    "wmem_queued", "optmem", "backlog", "drops")

# the fixed part of each reply (host order; inet ports and addresses are network order)
UNIX_DIAG_MSG = struct.Struct("=BBBxIQ")  # 16 bytes
VSOCK_DIAG_MSG = struct.Struct("=BBBBIIIIIQ")  # 32 bytes
NETLINK_DIAG_MSG = struct.Struct("=BBBBIIIIQ")  # 28 bytes
PACKET_DIAG_MSG = struct.Struct("=BBHIQ")  # 16 bytes
PACKET_DIAG_INFO_S = struct.Struct("=IIIIII")


class InetAddr(NamedTuple):
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int
    ifindex: int = 0


class UnixAddr(NamedTuple):
    path: bytes | None  # b"\0..." for abstract names; None when unnamed
    inode: int  # this socket's inode (local) or the peer's (peer)


class VsockEnd(NamedTuple):
    cid: int
    port: int


class NetlinkEnd(NamedTuple):
    portid: int
    group: int  # destination group (peer) / 0


class PacketEnd(NamedTuple):
    protocol: int  # ethertype, host order (0x0003 = ETH_P_ALL)
    ifindex: int  # 0 = every interface


Endpoint = InetAddr | UnixAddr | VsockEnd | NetlinkEnd | PacketEnd | None


@dataclass
class DiagSocket:
    """One socket the kernel reported. Unknown attributes stay in ``attrs`` as bytes."""

    netid: str  # tcp udp unix vsock netlink packet (ss's netid column, a key, not text)
    family: int
    type: int  # SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_RAW 3, SOCK_SEQPACKET 5
    protocol: int
    state: int
    local: Endpoint
    peer: Endpoint
    inode: int
    cookie: int
    recv_q: int | None = None
    send_q: int | None = None
    uid: int | None = None
    shutdown: int | None = None  # bit 0 RCV_SHUTDOWN, bit 1 SEND_SHUTDOWN
    timer: int | None = None
    retrans: int | None = None
    expires: int | None = None
    tcp_info: TcpInfo | None = None
    cong: str | None = None
    cc_info: dict[str, int] | None = None  # with "kind": vegas/dctcp/bbr as cc_kind
    cc_kind: str | None = None
    skmeminfo: dict[str, int] | None = None
    meminfo: dict[str, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    attrs: dict[int, bytes] = field(default_factory=dict)


# ---- values ----------------------------------------------------------------------------

def _reply(m: NlMsg, fixed: struct.Struct) -> tuple[tuple[Any, ...], dict[int, bytes]] | None:
    """A reply's fixed part and the attributes after it; None when it is too short."""
    p = m.payload
    if len(p) < fixed.size:
        return None
    return fixed.unpack_from(p), attr_map(p, fixed.size)


def _u32(attrs: dict[int, bytes], atype: int) -> int | None:
    """A u32 attribute's value; None when it is absent or too short."""
    raw = attrs.get(atype, b"")
    return _u32s(raw)[0] if len(raw) >= 4 else None


def _u32s(raw: bytes) -> tuple[int, ...]:
    n = len(raw) // 4
    return struct.unpack_from(f"={n}I", raw)


def skmeminfo(raw: bytes) -> dict[str, int]:
    """SK_MEMINFO_* u32 array; newer kernels' extra slots keep their index as name."""
    vals = _u32s(raw)
    return {(SK_MEMINFO_NAMES[i] if i < len(SK_MEMINFO_NAMES) else f"var{i}"): v
            for i, v in enumerate(vals)}


def cc_info(attr: int, raw: bytes) -> tuple[str, dict[str, int]] | None:
    """tcpvegas_info / tcp_dctcp_info / tcp_bbr_info."""
    if attr == INET_DIAG_VEGASINFO and len(raw) >= 16:
        e, cnt, rtt, minrtt = struct.unpack_from("=IIII", raw)
        return "vegas", {"enabled": e, "rttcnt": cnt, "rtt": rtt, "minrtt": minrtt}
    if attr == INET_DIAG_DCTCPINFO and len(raw) >= 16:
        e, ce, alpha, ab_ecn, ab_tot = struct.unpack_from("=HHIII", raw)
        return "dctcp", {"enabled": e, "ce_state": ce, "alpha": alpha, "ab_ecn": ab_ecn,
                         "ab_tot": ab_tot}
    if attr == INET_DIAG_BBRINFO and len(raw) >= 20:
        lo, hi, min_rtt, pg, cg = struct.unpack_from("=IIIII", raw)
        return "bbr", {"bw": (hi << 32) | lo, "min_rtt": min_rtt, "pacing_gain": pg,
                       "cwnd_gain": cg}
    return None


# ---- inet (TCP, UDP) -----------------------------------------------------------------------

def _ip(family: int, raw: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if family == socket.AF_INET:
        return ipaddress.IPv4Address(raw[:4])
    return ipaddress.IPv6Address(raw)


def parse_inet(m: NlMsg, protocol: int) -> DiagSocket | None:
    got = _reply(m, INET_DIAG_MSG)
    if got is None:
        return None
    (fam, state, timer, retrans, sport, dport, src, dst, ifindex, cookie, expires, rq, wq,
     uid, inode), attrs = got
    s = DiagSocket(
        netid={socket.IPPROTO_TCP: "tcp", socket.IPPROTO_UDP: "udp"}.get(protocol, str(protocol)),
        family=fam, type=socket.SOCK_STREAM if protocol == socket.IPPROTO_TCP
        else socket.SOCK_DGRAM, protocol=protocol, state=state,
        local=InetAddr(_ip(fam, src), int.from_bytes(sport, "big"), ifindex),
        peer=InetAddr(_ip(fam, dst), int.from_bytes(dport, "big")),
        inode=inode, cookie=cookie, recv_q=rq, send_q=wq, uid=uid, timer=timer,
        retrans=retrans, expires=expires, attrs=attrs)
    if attrs.get(INET_DIAG_SHUTDOWN):
        s.shutdown = attrs[INET_DIAG_SHUTDOWN][0]
    if INET_DIAG_INFO in attrs:
        s.tcp_info = TcpInfo(attrs[INET_DIAG_INFO])
    if INET_DIAG_CONG in attrs:
        s.cong = attrs[INET_DIAG_CONG].rstrip(b"\0").decode("ascii", "replace")
    for a in (INET_DIAG_VEGASINFO, INET_DIAG_DCTCPINFO, INET_DIAG_BBRINFO):
        if a in attrs and (cc := cc_info(a, attrs[a])) is not None:
            s.cc_kind, s.cc_info = cc
    if INET_DIAG_SKMEMINFO in attrs:
        s.skmeminfo = skmeminfo(attrs[INET_DIAG_SKMEMINFO])
    if INET_DIAG_MEMINFO in attrs and len(attrs[INET_DIAG_MEMINFO]) >= 16:
        s.meminfo = dict(zip(("rmem", "wmem", "fmem", "tmem"),
                             _u32s(attrs[INET_DIAG_MEMINFO])[:4], strict=True))
    for a, key in ((INET_DIAG_TOS, "tos"), (INET_DIAG_TCLASS, "tclass"),
                   (INET_DIAG_SKV6ONLY, "v6only")):
        if attrs.get(a):
            s.extra[key] = attrs[a][0]
    if (mark := _u32(attrs, INET_DIAG_MARK)) is not None:
        s.extra["mark"] = mark
    if len(attrs.get(INET_DIAG_CGROUP_ID, b"")) >= 8:
        s.extra["cgroup_id"] = struct.unpack_from("=Q", attrs[INET_DIAG_CGROUP_ID])[0]
    return s


# ---- unix ------------------------------------------------------------------------------------

def parse_unix(m: NlMsg) -> DiagSocket | None:
    got = _reply(m, UNIX_DIAG_MSG)
    if got is None:
        return None
    (fam, stype, state, inode, cookie), attrs = got
    name = attrs.get(UNIX_DIAG_NAME)
    peer_ino = _u32(attrs, UNIX_DIAG_PEER) or 0
    s = DiagSocket(netid="unix", family=fam, type=stype, protocol=0, state=state,
                   local=UnixAddr(name.rstrip(b"\0") if name and name[:1] != b"\0" else name,
                                  inode),
                   peer=UnixAddr(None, peer_ino), inode=inode, cookie=cookie, attrs=attrs)
    if len(attrs.get(UNIX_DIAG_RQLEN, b"")) >= 8:
        s.recv_q, s.send_q = _u32s(attrs[UNIX_DIAG_RQLEN])[:2]
    s.uid = _u32(attrs, UNIX_DIAG_UID)
    if attrs.get(UNIX_DIAG_SHUTDOWN):
        s.shutdown = attrs[UNIX_DIAG_SHUTDOWN][0]
    if len(attrs.get(UNIX_DIAG_VFS, b"")) >= 8:
        s.extra["vfs_ino"], s.extra["vfs_dev"] = _u32s(attrs[UNIX_DIAG_VFS])[:2]
    if UNIX_DIAG_ICONS in attrs:
        s.extra["pending"] = list(_u32s(attrs[UNIX_DIAG_ICONS]))
    if UNIX_DIAG_MEMINFO in attrs:
        s.skmeminfo = skmeminfo(attrs[UNIX_DIAG_MEMINFO])
    return s


# ---- vsock -----------------------------------------------------------------------------------

def parse_vsock(m: NlMsg) -> DiagSocket | None:
    got = _reply(m, VSOCK_DIAG_MSG)
    if got is None:
        return None
    (fam, stype, state, shutdown, src_cid, src_port, dst_cid, dst_port, inode,
     cookie), _attrs = got
    return DiagSocket(netid="vsock", family=fam, type=stype, protocol=0, state=state,
                      local=VsockEnd(src_cid, src_port), peer=VsockEnd(dst_cid, dst_port),
                      inode=inode, cookie=cookie, shutdown=shutdown,
                      extra={"msg_len": m.end - m.offset - NLMSG_HDRLEN})


# ---- netlink ---------------------------------------------------------------------------------

def parse_netlink(m: NlMsg) -> DiagSocket | None:
    got = _reply(m, NETLINK_DIAG_MSG)
    if got is None:
        return None
    (fam, stype, proto, state, portid, dst_portid, dst_group, inode, cookie), attrs = got
    s = DiagSocket(netid="netlink", family=fam, type=stype, protocol=proto, state=state,
                   local=NetlinkEnd(portid, 0), peer=NetlinkEnd(dst_portid, dst_group),
                   inode=inode, cookie=cookie, attrs=attrs)
    if NETLINK_DIAG_MEMINFO in attrs:
        s.skmeminfo = skmeminfo(attrs[NETLINK_DIAG_MEMINFO])
        s.recv_q, s.send_q = s.skmeminfo.get("rmem_alloc"), s.skmeminfo.get("wmem_alloc")
    if NETLINK_DIAG_GROUPS in attrs:
        words = _u32s(attrs[NETLINK_DIAG_GROUPS])
        s.extra["groups"] = [32 * i + b + 1 for i, w in enumerate(words) for b in range(32)
                             if w >> b & 1]
    if (flags := _u32(attrs, NETLINK_DIAG_FLAGS)) is not None:
        s.extra["flags"] = flags
    return s


# ---- packet ----------------------------------------------------------------------------------

def parse_packet(m: NlMsg) -> DiagSocket | None:
    got = _reply(m, PACKET_DIAG_MSG)
    if got is None:
        return None
    (fam, stype, num, inode, cookie), attrs = got
    ifindex = 0
    s = DiagSocket(netid="packet", family=fam, type=stype, protocol=num, state=0,
                   local=None, peer=None, inode=inode, cookie=cookie, attrs=attrs)
    if len(attrs.get(PACKET_DIAG_INFO, b"")) >= PACKET_DIAG_INFO_S.size:
        ifindex, version, reserve, copy_thresh, tstamp, flags = \
            PACKET_DIAG_INFO_S.unpack_from(attrs[PACKET_DIAG_INFO])
        s.extra.update(version=version, reserve=reserve, copy_thresh=copy_thresh,
                       tstamp=tstamp, flags=flags)
    s.local = PacketEnd(num, ifindex)
    s.uid = _u32(attrs, PACKET_DIAG_UID)
    if PACKET_DIAG_MEMINFO in attrs:
        s.skmeminfo = skmeminfo(attrs[PACKET_DIAG_MEMINFO])
        s.recv_q, s.send_q = s.skmeminfo.get("rmem_alloc"), s.skmeminfo.get("wmem_alloc")
    if (fanout := _u32(attrs, PACKET_DIAG_FANOUT)) is not None:
        s.extra["fanout"] = fanout
    for a, key in ((PACKET_DIAG_RX_RING, "rx_ring"), (PACKET_DIAG_TX_RING, "tx_ring")):
        if len(attrs.get(a, b"")) >= 28:
            s.extra[key] = dict(zip(("block_size", "block_nr", "frame_size", "frame_nr",
                                     "retire_tmo", "sizeof_priv", "features"),
                                    _u32s(attrs[a])[:7], strict=True))
    return s


# ---- every reply of some dumps --------------------------------------------------------------

def parse(kind: str, m: NlMsg, protocol: int = 0) -> DiagSocket | None:
    """One reply of a dump of ``kind`` (tcp udp unix vsock netlink packet); None if too short."""
    if kind in ("tcp", "udp"):
        return parse_inet(m, protocol)
    return _PARSERS[kind](m)


_PARSERS = {"unix": parse_unix, "vsock": parse_vsock, "netlink": parse_netlink,
            "packet": parse_packet}


def sockets_of(dumps: Iterable[DiagDump]) -> list[DiagSocket]:
    """Every socket the dumps' replies describe, in order.

    netlink_diag reports a socket that joined groups twice (from its hash table
    and its multicast list; `ss` prints both): a socket's cookie is unique, so
    each dump keeps a cookie's first record.
    """
    out: list[DiagSocket] = []
    for d in dumps:
        seen: dict[int, DiagSocket] = {}
        for m in d.replies:
            s = parse(d.kind, m, d.protocol)
            if s is not None:
                seen.setdefault(s.cookie, s)
        out += seen.values()
    return out
