"""sock_diag (NETLINK_SOCK_DIAG): list the sockets of a namespace, as `ss` does.

    from rawlab.sockets import diag
    for s in diag.inet_sockets(socket.IPPROTO_TCP, socket.AF_INET, diag.SS_CONN, info=True):
        s.state, s.local, s.peer, s.recv_q, s.tcp_info.rtt, s.cong

One request per family (``SOCK_DIAG_BY_FAMILY``, a dump): ``inet_diag_req_v2``
for TCP/UDP over IPv4/IPv6, ``unix_diag_req``, ``vsock_diag_req`` (family 40),
``netlink_diag_req``, ``packet_diag_req``. Replies become :class:`DiagSocket`
records of ints, bytes and addresses; only ``present/`` formats them. A
missing diag module (ENOENT from the kernel) becomes a RawlabError that says
which module to load.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from rawlab.decode.tcp_info import TcpInfo
from rawlab.errors import Exit, RawlabError, explain
from rawlab.sockets.netlink import (
    NETLINK_SOCK_DIAG,
    NLA_F_NESTED,
    NLATTR,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    SOCK_DIAG_BY_FAMILY,
    NetlinkError,
    NetlinkSocket,
    NlReply,
    align4,
)

AF_VSOCK = 40

# socket states (include/net/tcp_states.h); ss's SS_* bits are 1 << state
TCP_ESTABLISHED = 1
TCP_SYN_SENT = 2
TCP_SYN_RECV = 3
TCP_FIN_WAIT1 = 4
TCP_FIN_WAIT2 = 5
TCP_TIME_WAIT = 6
TCP_CLOSE = 7
TCP_CLOSE_WAIT = 8
TCP_LAST_ACK = 9
TCP_LISTEN = 10
TCP_CLOSING = 11
TCP_NEW_SYN_RECV = 12
TCP_BOUND_INACTIVE = 13
SS_ALL = (1 << 14) - 1
# ss's default for TCP: everything but listening, closed, time-wait and syn-recv
SS_CONN = SS_ALL & ~((1 << TCP_LISTEN) | (1 << TCP_CLOSE) | (1 << TCP_TIME_WAIT)
                     | (1 << TCP_SYN_RECV))

# --state names (ss's words, and the kernel's)
STATE_BY_NAME = {
    "established": TCP_ESTABLISHED, "estab": TCP_ESTABLISHED, "syn-sent": TCP_SYN_SENT,
    "syn-recv": TCP_SYN_RECV, "fin-wait-1": TCP_FIN_WAIT1, "fin-wait-2": TCP_FIN_WAIT2,
    "time-wait": TCP_TIME_WAIT, "closed": TCP_CLOSE, "close": TCP_CLOSE, "unconn": TCP_CLOSE,
    "close-wait": TCP_CLOSE_WAIT, "last-ack": TCP_LAST_ACK, "listening": TCP_LISTEN,
    "listen": TCP_LISTEN, "closing": TCP_CLOSING, "new-syn-recv": TCP_NEW_SYN_RECV,
    "bound-inactive": TCP_BOUND_INACTIVE,
}
STATE_GROUPS = {
    "all": SS_ALL, "connected": SS_ALL & ~((1 << TCP_LISTEN) | (1 << TCP_CLOSE)),
    "synchronized": SS_ALL & ~((1 << TCP_LISTEN) | (1 << TCP_CLOSE) | (1 << TCP_SYN_SENT)),
    "bucket": (1 << TCP_SYN_RECV) | (1 << TCP_TIME_WAIT),
}


def parse_states(names: list[str]) -> int:
    """A state bit mask from ss-style names (`established`, `listening`, `connected` ...)."""
    mask = 0
    for name in names:
        key = name.lower().replace("_", "-")
        if key in STATE_GROUPS:
            mask |= STATE_GROUPS[key]
        elif key in STATE_BY_NAME:
            mask |= 1 << STATE_BY_NAME[key]
        else:
            known = ", ".join([*STATE_BY_NAME, *STATE_GROUPS])
            raise RawlabError(f"unknown socket state '{name}'; fix: use one of {known}",
                              Exit.USAGE)
    return mask


# inet_diag attributes (linux/inet_diag.h)
INET_DIAG_MEMINFO = 1
INET_DIAG_INFO = 2
INET_DIAG_VEGASINFO = 3
INET_DIAG_CONG = 4
INET_DIAG_TOS = 5
INET_DIAG_TCLASS = 6
INET_DIAG_SKMEMINFO = 7
INET_DIAG_SHUTDOWN = 8
INET_DIAG_DCTCPINFO = 9
INET_DIAG_PROTOCOL = 10
INET_DIAG_SKV6ONLY = 11
INET_DIAG_MARK = 15
INET_DIAG_BBRINFO = 16
INET_DIAG_CLASS_ID = 17
INET_DIAG_ULP_INFO = 19
INET_DIAG_CGROUP_ID = 21


def ext_bit(attr: int) -> int:
    """The idiag_ext bit that asks for attribute `attr` (only attrs 1..8 fit the u8)."""
    return 1 << (attr - 1)


# --info: tcp_info, congestion name, its info (vegas/dctcp/bbr all ride VEGASINFO's bit),
# socket memory; TOS/TCLASS too.
EXT_INFO = (ext_bit(INET_DIAG_INFO) | ext_bit(INET_DIAG_VEGASINFO) | ext_bit(INET_DIAG_CONG)
            | ext_bit(INET_DIAG_SKMEMINFO) | ext_bit(INET_DIAG_MEMINFO)
            | ext_bit(INET_DIAG_TOS) | ext_bit(INET_DIAG_TCLASS))

# unix_diag
UDIAG_SHOW_NAME = 0x01
UDIAG_SHOW_VFS = 0x02
UDIAG_SHOW_PEER = 0x04
UDIAG_SHOW_ICONS = 0x08
UDIAG_SHOW_RQLEN = 0x10
UDIAG_SHOW_MEMINFO = 0x20
UDIAG_SHOW_UID = 0x40
UNIX_DIAG_NAME, UNIX_DIAG_VFS, UNIX_DIAG_PEER, UNIX_DIAG_ICONS = 0, 1, 2, 3
UNIX_DIAG_RQLEN, UNIX_DIAG_MEMINFO, UNIX_DIAG_SHUTDOWN, UNIX_DIAG_UID = 4, 5, 6, 7

# netlink_diag
NDIAG_PROTO_ALL = 0xFF
NDIAG_SHOW_MEMINFO = 0x1
NDIAG_SHOW_GROUPS = 0x2
NDIAG_SHOW_FLAGS = 0x8
NETLINK_DIAG_MEMINFO, NETLINK_DIAG_GROUPS, NETLINK_DIAG_FLAGS = 0, 1, 4

# packet_diag
PACKET_SHOW_INFO = 0x01
PACKET_SHOW_MCLIST = 0x02
PACKET_SHOW_RING_CFG = 0x04
PACKET_SHOW_FANOUT = 0x08
PACKET_SHOW_MEMINFO = 0x10
PACKET_SHOW_FILTER = 0x20
PACKET_DIAG_INFO, PACKET_DIAG_MCLIST, PACKET_DIAG_RX_RING, PACKET_DIAG_TX_RING = 0, 1, 2, 3
PACKET_DIAG_FANOUT, PACKET_DIAG_UID, PACKET_DIAG_MEMINFO, PACKET_DIAG_FILTER = 4, 5, 6, 7

SK_MEMINFO_NAMES = ("rmem_alloc", "rcvbuf", "wmem_alloc", "sndbuf", "fwd_alloc",
                    "wmem_queued", "optmem", "backlog", "drops")

# requests and fixed replies (host order; inet ports and addresses are network order)
INET_DIAG_SOCKID = struct.Struct("!HH16s16s")  # sport, dport, src, dst (+ if, cookie: host)
INET_DIAG_REQ_V2 = struct.Struct("=BBBxI2s2s16s16sIQ")  # 56 bytes
INET_DIAG_MSG = struct.Struct("=BBBB2s2s16s16sIQIIIII")  # 72 bytes
UNIX_DIAG_REQ = struct.Struct("=BBxxIIIQ")
UNIX_DIAG_MSG = struct.Struct("=BBBxIQ")  # 16 bytes
VSOCK_DIAG_REQ = struct.Struct("=BBxxIIIQ")
VSOCK_DIAG_MSG = struct.Struct("=BBBBIIIIIQ")  # 32 bytes
NETLINK_DIAG_REQ = struct.Struct("=BBxxIIQ")
NETLINK_DIAG_MSG = struct.Struct("=BBBBIIIIQ")  # 28 bytes
PACKET_DIAG_REQ = struct.Struct("=BBxxIIQ")
PACKET_DIAG_MSG = struct.Struct("=BBHIQ")  # 16 bytes
PACKET_DIAG_INFO_S = struct.Struct("=IIIIII")
NO_COOKIE = 0xFFFFFFFFFFFFFFFF

# module that answers each family's diag requests (kernel autoloads it when it can)
DIAG_MODULE = {
    socket.AF_INET: "inet_diag (tcp_diag, udp_diag)",
    socket.AF_INET6: "inet_diag (tcp_diag, udp_diag)",
    socket.AF_UNIX: "unix_diag", AF_VSOCK: "vsock_diag",
    socket.AF_NETLINK: "netlink_diag", socket.AF_PACKET: "af_packet_diag",
}
_MODPROBE = {
    socket.AF_INET: "modprobe inet_diag tcp_diag udp_diag",
    socket.AF_INET6: "modprobe inet_diag tcp_diag udp_diag",
    socket.AF_UNIX: "modprobe unix_diag", AF_VSOCK: "modprobe vsock_diag",
    socket.AF_NETLINK: "modprobe netlink_diag", socket.AF_PACKET: "modprobe af_packet_diag",
}


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


# ---- attributes --------------------------------------------------------------------------

def parse_attrs(buf: bytes, off: int = 0) -> dict[int, bytes]:
    """{type: payload} of a flat netlink attribute run (stops at a bad length)."""
    out: dict[int, bytes] = {}
    for atype, payload in iter_attrs(buf, off):
        out.setdefault(atype, payload)
    return out


def iter_attrs(buf: bytes, off: int = 0) -> Iterator[tuple[int, bytes]]:
    while off + NLATTR.size <= len(buf):
        alen, atype = NLATTR.unpack_from(buf, off)
        if alen < NLATTR.size or off + alen > len(buf):
            return
        yield atype & ~NLA_F_NESTED & 0x7FFF, buf[off + NLATTR.size: off + alen]
        off += align4(alen)


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


# ---- the request ---------------------------------------------------------------------------

def dump(family: int, request: bytes, parse: Callable[[NlReply], DiagSocket | None],
         ) -> list[DiagSocket]:
    """Send one SOCK_DIAG_BY_FAMILY dump request; parse every reply."""
    try:
        with NetlinkSocket(NETLINK_SOCK_DIAG) as nl:
            replies = nl.request(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, request)
    except NetlinkError as exc:
        raise diag_error(family, exc) from None
    except OSError as exc:
        raise explain(exc, "open NETLINK_SOCK_DIAG socket") from None
    # netlink_diag reports a socket that joined groups twice (from its hash table and its
    # multicast list; `ss` prints both): a socket's cookie is unique, keep its first record.
    out: dict[int, DiagSocket] = {}
    for s in map(parse, replies):
        if s is not None:
            out.setdefault(s.cookie, s)
    return list(out.values())


def diag_error(family: int, exc: NetlinkError) -> RawlabError:
    name = DIAG_MODULE.get(family, f"family {family}")
    err = exc.errno or 0
    if err in (errno.ENOENT, errno.EOPNOTSUPP, errno.EAFNOSUPPORT, errno.EINVAL) \
            and family in _MODPROBE:
        return RawlabError(
            f"sock_diag has no handler for {name} ({errno.errorcode.get(err, err)}"
            f"{': ' + exc.extack if exc.extack else ''}); fix: {_MODPROBE[family]} "
            "(or run in `rawlab lab vm`)", Exit.UNSUPPORTED, errno_=err)
    return explain(exc, f"sock_diag dump of {name} sockets")


# ---- inet (TCP, UDP) -----------------------------------------------------------------------

def inet_request(family: int, protocol: int, states: int, ext: int = 0) -> bytes:
    zero16 = bytes(16)
    return INET_DIAG_REQ_V2.pack(family, protocol, ext, states, bytes(2), bytes(2), zero16,
                                 zero16, 0, NO_COOKIE)


def _ip(family: int, raw: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if family == socket.AF_INET:
        return ipaddress.IPv4Address(raw[:4])
    return ipaddress.IPv6Address(raw)


def parse_inet(rep: NlReply, protocol: int) -> DiagSocket | None:
    p = rep.payload
    if len(p) < INET_DIAG_MSG.size:
        return None
    (fam, state, timer, retrans, sport, dport, src, dst, ifindex, cookie, expires, rq, wq,
     uid, inode) = INET_DIAG_MSG.unpack_from(p)
    attrs = parse_attrs(p, INET_DIAG_MSG.size)
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
    if len(attrs.get(INET_DIAG_MARK, b"")) >= 4:
        s.extra["mark"] = _u32s(attrs[INET_DIAG_MARK])[0]
    if len(attrs.get(INET_DIAG_CGROUP_ID, b"")) >= 8:
        s.extra["cgroup_id"] = struct.unpack_from("=Q", attrs[INET_DIAG_CGROUP_ID])[0]
    return s


def inet_sockets(protocol: int, family: int, states: int, *, info: bool = False,
                 ) -> list[DiagSocket]:
    """TCP or UDP sockets of one address family in these states (bit mask 1 << state)."""
    ext = EXT_INFO if info else 0
    req = inet_request(family, protocol, states, ext)
    return dump(family, req, lambda r: parse_inet(r, protocol))


# ---- unix ------------------------------------------------------------------------------------

UNIX_SHOW = (UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_UID
             | UDIAG_SHOW_VFS | UDIAG_SHOW_ICONS)


def unix_request(states: int, show: int = UNIX_SHOW) -> bytes:
    return UNIX_DIAG_REQ.pack(socket.AF_UNIX, 0, states, 0, show, NO_COOKIE)


def parse_unix(rep: NlReply) -> DiagSocket | None:
    p = rep.payload
    if len(p) < UNIX_DIAG_MSG.size:
        return None
    fam, stype, state, inode, cookie = UNIX_DIAG_MSG.unpack_from(p)
    attrs = parse_attrs(p, UNIX_DIAG_MSG.size)
    name = attrs.get(UNIX_DIAG_NAME)
    peer_ino = _u32s(attrs[UNIX_DIAG_PEER])[0] if len(attrs.get(UNIX_DIAG_PEER, b"")) >= 4 else 0
    s = DiagSocket(netid="unix", family=fam, type=stype, protocol=0, state=state,
                   local=UnixAddr(name.rstrip(b"\0") if name and name[:1] != b"\0" else name,
                                  inode),
                   peer=UnixAddr(None, peer_ino), inode=inode, cookie=cookie, attrs=attrs)
    if len(attrs.get(UNIX_DIAG_RQLEN, b"")) >= 8:
        s.recv_q, s.send_q = _u32s(attrs[UNIX_DIAG_RQLEN])[:2]
    if len(attrs.get(UNIX_DIAG_UID, b"")) >= 4:
        s.uid = _u32s(attrs[UNIX_DIAG_UID])[0]
    if attrs.get(UNIX_DIAG_SHUTDOWN):
        s.shutdown = attrs[UNIX_DIAG_SHUTDOWN][0]
    if len(attrs.get(UNIX_DIAG_VFS, b"")) >= 8:
        s.extra["vfs_ino"], s.extra["vfs_dev"] = _u32s(attrs[UNIX_DIAG_VFS])[:2]
    if UNIX_DIAG_ICONS in attrs:
        s.extra["pending"] = list(_u32s(attrs[UNIX_DIAG_ICONS]))
    if UNIX_DIAG_MEMINFO in attrs:
        s.skmeminfo = skmeminfo(attrs[UNIX_DIAG_MEMINFO])
    return s


def unix_sockets(states: int) -> list[DiagSocket]:
    return dump(socket.AF_UNIX, unix_request(states), parse_unix)


# ---- vsock -----------------------------------------------------------------------------------

def vsock_request(states: int) -> bytes:
    return VSOCK_DIAG_REQ.pack(AF_VSOCK, 0, states, 0, 0, NO_COOKIE)


def parse_vsock(rep: NlReply) -> DiagSocket | None:
    p = rep.payload
    if len(p) < VSOCK_DIAG_MSG.size:
        return None
    (fam, stype, state, shutdown, src_cid, src_port, dst_cid, dst_port, inode,
     cookie) = VSOCK_DIAG_MSG.unpack_from(p)
    return DiagSocket(netid="vsock", family=fam, type=stype, protocol=0, state=state,
                      local=VsockEnd(src_cid, src_port), peer=VsockEnd(dst_cid, dst_port),
                      inode=inode, cookie=cookie, shutdown=shutdown,
                      extra={"msg_len": len(p)})


def vsock_sockets(states: int) -> list[DiagSocket]:
    return dump(AF_VSOCK, vsock_request(states), parse_vsock)


def wait_vsock_listening(port: int, timeout: float = 30.0) -> bool:
    """Poll vsock_diag until a socket of this machine listens on `port` (any CID).

    For starting a peer (socat, a bench server) and connecting only once it
    listens; False when `timeout` seconds passed first.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        if any(isinstance(s.local, VsockEnd) and s.local.port == port
               for s in vsock_sockets(1 << TCP_LISTEN)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


# ---- netlink ---------------------------------------------------------------------------------

def netlink_request(protocol: int = NDIAG_PROTO_ALL) -> bytes:
    return NETLINK_DIAG_REQ.pack(socket.AF_NETLINK, protocol, 0,
                                 NDIAG_SHOW_MEMINFO | NDIAG_SHOW_GROUPS | NDIAG_SHOW_FLAGS,
                                 NO_COOKIE)


def parse_netlink(rep: NlReply) -> DiagSocket | None:
    p = rep.payload
    if len(p) < NETLINK_DIAG_MSG.size:
        return None
    (fam, stype, proto, state, portid, dst_portid, dst_group, inode,
     cookie) = NETLINK_DIAG_MSG.unpack_from(p)
    attrs = parse_attrs(p, NETLINK_DIAG_MSG.size)
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
    if len(attrs.get(NETLINK_DIAG_FLAGS, b"")) >= 4:
        s.extra["flags"] = _u32s(attrs[NETLINK_DIAG_FLAGS])[0]
    return s


def netlink_sockets() -> list[DiagSocket]:
    return dump(socket.AF_NETLINK, netlink_request(), parse_netlink)


# ---- packet ----------------------------------------------------------------------------------

def packet_request() -> bytes:
    show = PACKET_SHOW_INFO | PACKET_SHOW_MEMINFO | PACKET_SHOW_FANOUT | PACKET_SHOW_RING_CFG
    return PACKET_DIAG_REQ.pack(socket.AF_PACKET, 0, 0, show, NO_COOKIE)


def parse_packet(rep: NlReply) -> DiagSocket | None:
    p = rep.payload
    if len(p) < PACKET_DIAG_MSG.size:
        return None
    fam, stype, num, inode, cookie = PACKET_DIAG_MSG.unpack_from(p)
    attrs = parse_attrs(p, PACKET_DIAG_MSG.size)
    ifindex = 0
    s = DiagSocket(netid="packet", family=fam, type=stype, protocol=num, state=0,
                   local=None, peer=None, inode=inode, cookie=cookie, attrs=attrs)
    if len(attrs.get(PACKET_DIAG_INFO, b"")) >= PACKET_DIAG_INFO_S.size:
        ifindex, version, reserve, copy_thresh, tstamp, flags = \
            PACKET_DIAG_INFO_S.unpack_from(attrs[PACKET_DIAG_INFO])
        s.extra.update(version=version, reserve=reserve, copy_thresh=copy_thresh,
                       tstamp=tstamp, flags=flags)
    s.local = PacketEnd(num, ifindex)
    if len(attrs.get(PACKET_DIAG_UID, b"")) >= 4:
        s.uid = _u32s(attrs[PACKET_DIAG_UID])[0]
    if PACKET_DIAG_MEMINFO in attrs:
        s.skmeminfo = skmeminfo(attrs[PACKET_DIAG_MEMINFO])
        s.recv_q, s.send_q = s.skmeminfo.get("rmem_alloc"), s.skmeminfo.get("wmem_alloc")
    if len(attrs.get(PACKET_DIAG_FANOUT, b"")) >= 4:
        s.extra["fanout"] = _u32s(attrs[PACKET_DIAG_FANOUT])[0]
    for a, key in ((PACKET_DIAG_RX_RING, "rx_ring"), (PACKET_DIAG_TX_RING, "tx_ring")):
        if len(attrs.get(a, b"")) >= 28:
            s.extra[key] = dict(zip(("block_size", "block_nr", "frame_size", "frame_nr",
                                     "retire_tmo", "sizeof_priv", "features"),
                                    _u32s(attrs[a])[:7], strict=True))
    return s


def packet_sockets() -> list[DiagSocket]:
    return dump(socket.AF_PACKET, packet_request(), parse_packet)


# ---- which process holds a socket ---------------------------------------------------------

class Owner(NamedTuple):
    pid: int
    comm: str
    fd: int


def inode_owners(proc: str = "/proc") -> dict[int, list[Owner]]:
    """socket inode -> every (pid, command, fd) holding it, from /proc/*/fd links."""
    out: dict[int, list[Owner]] = {}
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        comm: str | None = None
        for fd in fds:
            try:
                link = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if not link.startswith("socket:["):
                continue
            if comm is None:
                try:
                    with open(f"{proc}/{pid}/comm") as fh:
                        comm = fh.read().strip()
                except OSError:
                    comm = "?"
            out.setdefault(int(link[8:-1]), []).append(Owner(int(pid), comm, int(fd)))
    return out


# ---- what `rawlab netlink sockets` asks for ----------------------------------------------------

KINDS = ("tcp", "udp", "unix", "vsock", "netlink", "packet")
_LISTEN = 1 << TCP_LISTEN
# (default, --listening) state masks per kind, as ss chooses them
DEFAULT_STATES = {
    "tcp": (SS_CONN, _LISTEN),
    "udp": (1 << TCP_ESTABLISHED, 1 << TCP_CLOSE),
    "unix": (SS_ALL & ~_LISTEN, _LISTEN),
    "vsock": (SS_ALL & ~_LISTEN, _LISTEN),
}


def states_for(kind: str, *, listening: bool = False, all_states: bool = False,
               explicit: int = 0) -> int:
    """The state mask to ask for: --state wins, then --all, --listening, the default."""
    if explicit:
        return explicit
    if all_states or kind not in DEFAULT_STATES:
        return SS_ALL
    default, listen = DEFAULT_STATES[kind]
    return listen if listening else default


def collect(kinds: list[str], families: list[int], *, listening: bool = False,
            all_states: bool = False, explicit_states: int = 0,
            info: bool = False) -> list[DiagSocket]:
    """Every socket of these kinds (and, for tcp/udp, address families), dump by dump."""
    out: list[DiagSocket] = []
    for kind in kinds:
        states = states_for(kind, listening=listening, all_states=all_states,
                            explicit=explicit_states)
        if kind in ("tcp", "udp"):
            proto = socket.IPPROTO_TCP if kind == "tcp" else socket.IPPROTO_UDP
            for fam in families:
                out += inet_sockets(proto, fam, states, info=info)
        elif kind == "unix":
            out += unix_sockets(states)
        elif kind == "vsock":
            out += vsock_sockets(states)
        elif kind == "netlink":
            out += netlink_sockets()
        elif kind == "packet":
            out += packet_sockets()
        else:
            raise RawlabError(f"unknown socket kind '{kind}'", Exit.USAGE)
    return out
