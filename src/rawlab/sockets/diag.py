"""sock_diag (NETLINK_SOCK_DIAG) requests: ask the kernel for a namespace's sockets, as `ss` does.

    from rawlab.sockets import diag
    dumps = diag.collect(["tcp"], [socket.AF_INET], info=True)   # [DiagDump(kind, protocol,
                                                                  #   replies: [NlMsg])]
    with DiagLookup() as look:                 # one socket of one 5-tuple, no dump
        look.find(socket.AF_INET, IPPROTO_TCP, local, lport, remote, rport)  # InetSocket | None
    DestroyWatch().drain()                     # the sockets the kernel destroyed since

One request per family (``SOCK_DIAG_BY_FAMILY``, a dump): ``inet_diag_req_v2``
for TCP/UDP over IPv4/IPv6, ``unix_diag_req``, ``vsock_diag_req`` (family 40),
``netlink_diag_req``, ``packet_diag_req``. The replies stay undecoded here:
:mod:`rawlab.decode.sock_diag` turns them into records. A missing diag module
(ENOENT from the kernel) becomes a RawlabError that says which module to load.

Process attribution needs two more things, and only the fixed part of an
``inet_diag_msg`` (its struct is here, :mod:`rawlab.decode.sock_diag` builds on it; the
look-up is sent and its reply parsed by :func:`rawlab._kernels.diag_find`, any
``inet_diag_msg`` by :func:`rawlab._kernels.inet_diag_socket`, a datagram of destroy
messages by :func:`rawlab._kernels.diag_destroyed`):
an exact look-up of one TCP/UDP socket by its 4-tuple (``SOCK_DIAG_BY_FAMILY``
without NLM_F_DUMP: ``inet_diag_find_one_icsk`` / ``udp_dump_one``), and the
``SKNLGRP_INET*_DESTROY`` multicast groups, where the kernel announces each TCP/UDP
socket it frees (its 4-tuple and cookie; inode and uid are already gone then).
"""

from __future__ import annotations

import errno
import socket
import struct
from typing import NamedTuple

from rawlab.errors import Exit, RawlabError, explain
from rawlab.sockets.netlink import SOCK_DIAG_BY_FAMILY, SOL_NETLINK, NetlinkError, NetlinkSocket
from rawlab.sockets.netlink_wire import (
    NETLINK_SOCK_DIAG,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NlMsg,
    nlattr,
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

# netlink_diag
NDIAG_PROTO_ALL = 0xFF
NDIAG_SHOW_MEMINFO = 0x1
NDIAG_SHOW_GROUPS = 0x2
NDIAG_SHOW_FLAGS = 0x8

# packet_diag
PACKET_SHOW_INFO = 0x01
PACKET_SHOW_MCLIST = 0x02
PACKET_SHOW_RING_CFG = 0x04
PACKET_SHOW_FANOUT = 0x08
PACKET_SHOW_MEMINFO = 0x10
PACKET_SHOW_FILTER = 0x20

# requests (host order; inet ports and addresses are network order)
INET_DIAG_REQ_V2 = struct.Struct("=BBBxI2s2s16s16sIQ")  # 56 bytes
# the fixed part of an inet reply: family, state, timer, retrans, sport, dport, src, dst,
# ifindex, cookie, expires, rqueue, wqueue, uid, inode
INET_DIAG_MSG = struct.Struct("=BBBB2s2s16s16sIQIIIII")  # 72 bytes
UNIX_DIAG_REQ = struct.Struct("=BBxxIIIQ")
VSOCK_DIAG_REQ = struct.Struct("=BBxxIIIQ")
NETLINK_DIAG_REQ = struct.Struct("=BBxxIIQ")
PACKET_DIAG_REQ = struct.Struct("=BBxxIIQ")
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


# ---- the request ---------------------------------------------------------------------------

class DiagDump(NamedTuple):
    """The replies of one dump, undecoded (rawlab.decode.sock_diag reads them)."""

    kind: str  # tcp udp unix vsock netlink packet (ss's netid)
    protocol: int  # IPPROTO_TCP / IPPROTO_UDP for tcp and udp, else 0
    replies: list[NlMsg]


def dump(family: int, request: bytes) -> list[NlMsg]:
    """Send one SOCK_DIAG_BY_FAMILY dump request; every reply, undecoded."""
    try:
        with NetlinkSocket(NETLINK_SOCK_DIAG) as nl:
            return nl.request(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, request)
    except NetlinkError as exc:
        raise diag_error(family, exc) from None
    except OSError as exc:
        raise explain(exc, "open NETLINK_SOCK_DIAG socket") from None


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

INET_DIAG_REQ_BYTECODE = 1


def inet_request(family: int, protocol: int, states: int, ext: int = 0,
                 bytecode: bytes = b"") -> bytes:
    """inet_diag_req_v2, and ss's filter compiled to bytecode (rawlab.sockets.diag_filter)
    for the kernel to run on each socket."""
    zero16 = bytes(16)
    req = INET_DIAG_REQ_V2.pack(family, protocol, ext, states, bytes(2), bytes(2), zero16,
                                zero16, 0, NO_COOKIE)
    return req + nlattr(INET_DIAG_REQ_BYTECODE, bytecode) if bytecode else req


class InetSocket(NamedTuple):
    """What a look-up tells of one TCP/UDP socket (the fixed reply, the cgroup id)."""

    state: int
    inode: int  # 0: no process holds it any more (orphaned, TIME_WAIT, not yet accepted)
    uid: int
    cookie: int
    cgroup_id: int | None  # INET_DIAG_CGROUP_ID (cgroup v2), absent for orphans


def inet_socket(payload: bytes) -> InetSocket | None:
    """The :class:`InetSocket` of one reply's payload; None when it is too short
    (:func:`rawlab._kernels.inet_diag_socket`: the look-up's own parser)."""
    from rawlab._kernels import inet_diag_socket

    got = inet_diag_socket(payload)
    return InetSocket(*got) if got is not None else None


def lookup_request(family: int, protocol: int, local: bytes, lport: int, remote: bytes,
                   rport: int, cookie: int = NO_COOKIE) -> bytes:
    """An exact look-up of the socket whose local end is (local, lport).

    TCP's ``inet_diag_find_one_icsk`` takes ``id.src`` as the local end; UDP's
    ``udp_dump_one`` passes ``id.src`` to ``__udp4_lib_lookup`` as the packet's source,
    i.e. the remote end ("swapped for historical reasons", net/ipv4/udp_diag.c): so for
    UDP the two ends change places here. TCP answers a listener when no connection has
    the 4-tuple (``inet_lookup``); UDP answers an unconnected socket bound to the port.
    """
    if protocol == socket.IPPROTO_UDP:
        local, lport, remote, rport = remote, rport, local, lport
    return INET_DIAG_REQ_V2.pack(family, protocol, 0, SS_ALL, lport.to_bytes(2, "big"),
                                 rport.to_bytes(2, "big"), local.ljust(16, b"\0"),
                                 remote.ljust(16, b"\0"), 0, cookie)


class DiagLookup:
    """A NETLINK_SOCK_DIAG socket for exact look-ups (open it inside the namespace to ask:
    sock_diag answers for the namespace its socket lives in)."""

    def __init__(self) -> None:
        try:
            self._nl = NetlinkSocket(NETLINK_SOCK_DIAG)
        except OSError as exc:
            raise explain(exc, "open NETLINK_SOCK_DIAG socket") from None

    def find(self, family: int, protocol: int, local: bytes, lport: int, remote: bytes,
             rport: int) -> InetSocket | None:
        """The socket with that local and remote end (see :func:`lookup_request`), None
        when the kernel has none (ENOENT). (Asked and answered in one compiled call,
        :func:`rawlab._kernels.diag_find`: a thread asks this beside the capture's loop.)"""
        from rawlab._kernels import diag_find

        nl = self._nl
        nl.seq += 1
        try:
            got = diag_find(nl.sock.fileno(), nl.seq & 0xFFFFFFFF,
                            lookup_request(family, protocol, local, lport, remote, rport))
        except OSError as exc:
            raise diag_error(family, NetlinkError(exc.errno or errno.EIO, None)) from None
        return InetSocket(*got) if got is not None else None

    def dump(self, family: int, protocol: int, states: int = SS_ALL) -> list[NlMsg]:
        """Every socket of one family and protocol in `states` (a mask of 1 << state;
        default every state), undecoded replies."""
        try:
            return self._nl.request(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP,
                                    inet_request(family, protocol, states))
        except NetlinkError as exc:
            raise diag_error(family, exc) from None

    def close(self) -> None:
        self._nl.close()

    def __enter__(self) -> DiagLookup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# sock_diag multicast groups (linux/sock_diag.h): a message per TCP/UDP socket destroyed
SKNLGRP_INET_TCP_DESTROY = 1
SKNLGRP_INET_UDP_DESTROY = 2
SKNLGRP_INET6_TCP_DESTROY = 3
SKNLGRP_INET6_UDP_DESTROY = 4
DESTROY_GROUPS = (SKNLGRP_INET_TCP_DESTROY, SKNLGRP_INET_UDP_DESTROY,
                  SKNLGRP_INET6_TCP_DESTROY, SKNLGRP_INET6_UDP_DESTROY)
_NETLINK_ADD_MEMBERSHIP = 1


class Destroyed(NamedTuple):
    """One socket the kernel destroyed: its ends as they were, and its cookie."""

    family: int
    protocol: int
    local: bytes  # 4 or 16 bytes (all zero: unbound)
    lport: int
    remote: bytes
    rport: int
    cookie: int


class DestroyWatch:
    """Membership of the sock_diag destroy groups (needs CAP_NET_ADMIN over the namespace
    the socket is opened in: ``sock_diag_bind``). Raises OSError when refused.

    The kernel sends each message from a work queue soon after the socket is freed.
    ``lost`` is set when the socket buffer overflowed (ENOBUFS): messages were dropped.
    """

    def __init__(self, rcvbuf: int = 4 << 20) -> None:
        from rawlab.sockets.netlink_monitor import set_rcvbuf

        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK,
                             NETLINK_SOCK_DIAG)
        try:
            set_rcvbuf(sock, rcvbuf)  # (past rmem_max where it may: ~5,000 messages)
            sock.bind((0, 0))
            for group in DESTROY_GROUPS:
                sock.setsockopt(SOL_NETLINK, _NETLINK_ADD_MEMBERSHIP, group)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.lost = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> list[Destroyed]:
        """Every destroy message waiting now (never blocks; each datagram's messages read
        by :func:`rawlab._kernels.diag_destroyed`)."""
        from rawlab._kernels import diag_destroyed

        out: list[Destroyed] = []
        while True:
            try:
                buf = self.sock.recv(1 << 16)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.lost = True
                    continue
                raise
            out += map(Destroyed._make, diag_destroyed(buf))

    def close(self) -> None:
        self.sock.close()


# ---- unix ------------------------------------------------------------------------------------

UNIX_SHOW = (UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_UID
             | UDIAG_SHOW_VFS | UDIAG_SHOW_ICONS)


def unix_request(states: int, show: int = UNIX_SHOW) -> bytes:
    return UNIX_DIAG_REQ.pack(socket.AF_UNIX, 0, states, 0, show, NO_COOKIE)


# ---- vsock -----------------------------------------------------------------------------------

def vsock_request(states: int) -> bytes:
    return VSOCK_DIAG_REQ.pack(AF_VSOCK, 0, states, 0, 0, NO_COOKIE)


# ---- netlink ---------------------------------------------------------------------------------

NETLINK_DIAG_MSG = struct.Struct("=BBBBIIIIQ")  # the reply's fixed part, 28 bytes


def netlink_request(protocol: int = NDIAG_PROTO_ALL,
                    show: int = NDIAG_SHOW_MEMINFO | NDIAG_SHOW_GROUPS | NDIAG_SHOW_FLAGS,
                    ) -> bytes:
    return NETLINK_DIAG_REQ.pack(socket.AF_NETLINK, protocol, 0, show, NO_COOKIE)


def netlink_ports() -> list[tuple[int, int, int]]:
    """(netlink protocol, port id, socket inode) of every netlink socket of this thread's
    namespace (NETLINK_DIAG: who holds which port, as `ss -A netlink` asks)."""
    out = []
    for m in dump(socket.AF_NETLINK, netlink_request(show=0)):
        p = m.payload
        if len(p) >= NETLINK_DIAG_MSG.size:
            _fam, _type, proto, _state, portid, _dport, _dgroup, inode, _cookie = \
                NETLINK_DIAG_MSG.unpack_from(p)
            out.append((proto, portid, inode))
    return out


# ---- packet ----------------------------------------------------------------------------------

def packet_request() -> bytes:
    show = PACKET_SHOW_INFO | PACKET_SHOW_MEMINFO | PACKET_SHOW_FANOUT | PACKET_SHOW_RING_CFG
    return PACKET_DIAG_REQ.pack(socket.AF_PACKET, 0, 0, show, NO_COOKIE)


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
            info: bool = False, memory: bool = False, bytecode: bytes = b"",
            ) -> list[DiagDump]:
    """One dump per kind (tcp and udp: per address family), in order; the replies undecoded.
    ``memory``: socket memory too (ss -m); ``bytecode``: ss's filter, run by the kernel on
    TCP and UDP sockets."""
    out: list[DiagDump] = []
    for kind in kinds:
        states = states_for(kind, listening=listening, all_states=all_states,
                            explicit=explicit_states)
        if kind in ("tcp", "udp"):
            proto = socket.IPPROTO_TCP if kind == "tcp" else socket.IPPROTO_UDP
            ext = (EXT_INFO if info else 0) | (ext_bit(INET_DIAG_SKMEMINFO) if memory else 0)
            out += [DiagDump(kind, proto, dump(fam, inet_request(fam, proto, states, ext,
                                                                 bytecode)))
                    for fam in families]
        elif kind == "unix":
            out.append(DiagDump(kind, 0, dump(socket.AF_UNIX, unix_request(states))))
        elif kind == "vsock":
            out.append(DiagDump(kind, 0, dump(AF_VSOCK, vsock_request(states))))
        elif kind == "netlink":
            out.append(DiagDump(kind, 0, dump(socket.AF_NETLINK, netlink_request())))
        elif kind == "packet":
            out.append(DiagDump(kind, 0, dump(socket.AF_PACKET, packet_request())))
        else:
            raise RawlabError(f"unknown socket kind '{kind}'", Exit.USAGE)
    return out
