"""Raw AF_NETLINK sockets of our own: open, send a request, read every reply.

Netlink headers are in host byte order (little-endian on the machines we run
on; we use native order "=" so the code stays right elsewhere too).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# netlink protocols (linux/netlink.h)
NETLINK_ROUTE = 0
NETLINK_SOCK_DIAG = 4
NETLINK_AUDIT = 9
NETLINK_NETFILTER = 12
NETLINK_KOBJECT_UEVENT = 15
NETLINK_GENERIC = 16

# message types and flags
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x001
NLM_F_MULTI = 0x002
NLM_F_ACK = 0x004
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_ACK_TLVS = 0x200  # in NLMSG_ERROR: extended ACK attributes follow
NLMSGERR_ATTR_MSG = 1

SOL_NETLINK = 270
NETLINK_EXT_ACK = 11

# rtnetlink
RTM_NEWLINK = 16
RTM_DELLINK = 17
IFLA_IFNAME = 3
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
NLA_F_NESTED = 0x8000

# sock_diag
SOCK_DIAG_BY_FAMILY = 20

NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLATTR = struct.Struct("=HH")  # len, type
IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change


def align4(n: int) -> int:
    return (n + 3) & ~3


def nlattr(atype: int, payload: bytes) -> bytes:
    """One netlink attribute: header, payload, padding to 4 bytes."""
    raw = NLATTR.pack(NLATTR.size + len(payload), atype) + payload
    return raw + b"\0" * (align4(len(raw)) - len(raw))


@dataclass(frozen=True)
class NlReply:
    """One message of a reply: its type, flags and payload (after nlmsghdr)."""

    type: int
    flags: int
    seq: int
    pid: int
    payload: bytes


def split_messages(buf: bytes) -> Iterator[NlReply]:
    """Every nlmsghdr-framed message in one datagram (stops at a bad length)."""
    off = 0
    while off + NLMSGHDR.size <= len(buf):
        length, mtype, flags, seq, pid = NLMSGHDR.unpack_from(buf, off)
        if length < NLMSGHDR.size or off + length > len(buf):
            return
        yield NlReply(mtype, flags, seq, pid, bytes(buf[off + NLMSGHDR.size : off + length]))
        off += align4(length)


def extack_message(reply: NlReply) -> str | None:
    """The extended ACK text (NLMSGERR_ATTR_MSG) of an NLMSG_ERROR or NLMSG_DONE, if any."""
    if not reply.flags & NLM_F_ACK_TLVS:
        return None
    if reply.type == NLMSG_DONE:  # a failed dump: error (i32), then the attributes
        off = 4
    else:
        if len(reply.payload) < 4 + NLMSGHDR.size:
            return None
        # error (i32), then the original header; its payload too unless capped
        orig_len = NLMSGHDR.unpack_from(reply.payload, 4)[0]
        off = 4 + (NLMSGHDR.size if reply.flags & 0x100 else align4(orig_len))  # CAPPED
    while off + NLATTR.size <= len(reply.payload):
        alen, atype = NLATTR.unpack_from(reply.payload, off)
        if alen < NLATTR.size:
            break
        if atype & 0x3FFF == NLMSGERR_ATTR_MSG:
            return reply.payload[off + NLATTR.size : off + alen].rstrip(b"\0").decode(
                "utf-8", "replace"
            )
        off += align4(alen)
    return None


class NetlinkError(OSError):
    """An NLMSG_ERROR with a negative errno, and the kernel's extended ACK text."""

    def __init__(self, err: int, extack: str | None):
        text = os.strerror(err) + (f" ({extack})" if extack else "")
        super().__init__(err, text)
        self.extack = extack


class NetlinkSocket:
    """A raw netlink socket that sends one request and collects the reply."""

    def __init__(self, protocol: int, *, rcvbuf: int = 1 << 20):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            try:
                self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            except OSError:
                pass
            self.sock.bind((0, 0))
        except BaseException:
            self.sock.close()
            raise
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> NetlinkSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, mtype: int, flags: int, payload: bytes) -> list[NlReply]:
        """Send one request; return the replies up to the ACK or NLMSG_DONE.

        Raises :class:`NetlinkError` when the kernel answers with an error.
        """
        self.seq += 1
        seq = self.seq
        msg = NLMSGHDR.pack(NLMSGHDR.size + len(payload), mtype, flags, seq, 0) + payload
        self.sock.send(msg)
        replies: list[NlReply] = []
        while True:
            buf = self.sock.recv(1 << 16)
            for rep in split_messages(buf):
                if rep.seq != seq:
                    continue
                if rep.type == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", rep.payload, 0)[0]
                    if err:
                        raise NetlinkError(err, extack_message(rep))
                    return replies  # the ACK
                if rep.type == NLMSG_DONE:
                    return replies
                replies.append(rep)
                if not rep.flags & NLM_F_MULTI and not flags & NLM_F_ACK:
                    return replies


def link_add(nl: NetlinkSocket, ifname: str, kind: str) -> None:
    """`ip link add IFNAME type KIND` for kinds that take no options (nlmon, vsockmon, dummy)."""
    linkinfo = nlattr(IFLA_INFO_KIND, kind.encode())
    payload = (
        IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        + nlattr(IFLA_IFNAME, ifname.encode() + b"\0")
        + nlattr(IFLA_LINKINFO | NLA_F_NESTED, linkinfo)
    )
    nl.request(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, payload)


def link_del(nl: NetlinkSocket, ifname: str) -> None:
    payload = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + nlattr(
        IFLA_IFNAME, ifname.encode() + b"\0"
    )
    try:
        nl.request(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, payload)
    except OSError as exc:
        if exc.errno != errno.ENODEV:
            raise


# ---- dumps and the monitor (rawlab netlink dump / monitor) ------------------------

NETLINK_ADD_MEMBERSHIP = 1
NETLINK_PKTINFO = 3
NETLINK_LISTEN_ALL_NSID = 8
NETLINK_GET_STRICT_CHK = 12
SO_RCVBUFFORCE = 33
NLM_F_DUMP_INTR = 0x10

RTM_GETLINK = 18
RTM_GETADDR = 22
RTM_GETROUTE = 26
RTM_GETNEIGH = 30
RTM_GETRULE = 34
RTM_GETNSID = 90
RTA_OIF = 4
RTA_TABLE = 15
NDA_IFINDEX = 8
IFLA_EXT_MASK = 29
RTEXT_FILTER_VF = 1
RTEXT_FILTER_SKIP_STATS = 8

RTMSG = struct.Struct("=BBBBBBBBI")  # family dst_len src_len tos table protocol scope type flags
IFADDRMSG = struct.Struct("=BBBBI")  # family prefixlen flags scope index
NDMSG = struct.Struct("=BxxxiHBB")  # family ifindex state flags type
FIBRULEHDR = struct.Struct("=BBBBBBBBI")
RTGENMSG = struct.Struct("=Bxxx")

# rtnetlink multicast groups (RTNLGRP_*), by the names `ip monitor` uses
GROUPS: dict[str, tuple[int, ...]] = {
    "link": (1,),
    "neigh": (3,),
    "tc": (4,),
    "addr": (5, 9), "addr4": (5,), "addr6": (9,),
    "mroute": (6, 10),
    "route": (7, 11), "route4": (7,), "route6": (11,),
    "rule": (8, 19), "rule4": (8,), "rule6": (19,),
    "prefix": (18,),
    "netconf": (24, 25),
    "mdb": (26,),
    "mpls": (27,),
    "nsid": (28,),
    "nexthop": (32,),
}
DEFAULT_GROUPS = ("link", "addr", "route", "neigh", "rule", "nsid", "netconf", "nexthop",
                  "prefix", "mroute")


def group_numbers(names: list[str] | tuple[str, ...]) -> list[int]:
    """RTNLGRP numbers for group names; raises ValueError naming the unknown one."""
    out: list[int] = []
    for name in names:
        if name not in GROUPS:
            raise ValueError(name)
        out.extend(g for g in GROUPS[name] if g not in out)
    return out


_RUNS: dict[bytes, Any] = {}


def _run_of(head: bytes, step: int) -> Any:
    """A compiled regex matching consecutive messages that share this nlmsghdr prefix."""
    run = _RUNS.get(head)
    if run is None:
        import re

        if len(_RUNS) > 256:
            _RUNS.clear()
        run = _RUNS[head] = re.compile(
            b"(?:" + re.escape(head) + b".{%d})*" % (step - len(head)), re.DOTALL).match
    return run


def message_ends(buf: bytes) -> tuple[bool, int | None, int]:
    """(the dump ended here, errno if it ended in an error, NLM_F_DUMP_INTR seen) for one buffer.

    Walks only the nlmsghdr chain (lengths, types and flags), not the attributes;
    a run of messages with the same length, type and flags (most of a dump) is
    stepped over by one regular-expression match.
    """
    off, n = 0, len(buf)
    intr = 0
    unpack = NLMSGHDR.unpack_from
    while off + 16 <= n:
        length, mtype, flags, _seq, _pid = unpack(buf, off)
        if length < 16:
            return True, errno.EBADMSG, intr
        intr |= flags & NLM_F_DUMP_INTR
        if mtype == NLMSG_DONE:
            err = struct.unpack_from("=i", buf, off + 16)[0] if length >= 20 else 0
            return True, -err if err < 0 else None, intr
        if mtype == NLMSG_ERROR:
            err = struct.unpack_from("=i", buf, off + 16)[0] if length >= 20 else 0
            return (True, -err, intr) if err else (True, None, intr)
        step = (length + 3) & ~3
        if mtype >= 16 and off + 2 * step <= n:  # same length, type and flags: skip the run
            end = _run_of(bytes(buf[off:off + 8]), step)(buf, off).end()
            off = end if end > off else off + step
            continue
        off += step
    return False, None, intr


def dump_request(kind: str, *, family: int = 0, table: int | None = None,
                 ifindex: int | None = None) -> tuple[int, bytes]:
    """(message type, payload) of a dump request with kernel-side filters, as iproute2 sends.

    With NETLINK_GET_STRICT_CHK the kernel honours the header fields and the
    filter attributes (routes: table, RTA_OIF; addresses: ifa_index;
    neighbours: NDA_IFINDEX); without it they are ignored, so callers filter too.
    """
    if kind == "links":
        return RTM_GETLINK, IFINFOMSG.pack(family, 0, 0, 0, 0) + nlattr(
            IFLA_EXT_MASK, struct.pack("=I", RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS))
    if kind == "addrs":
        return RTM_GETADDR, IFADDRMSG.pack(family, 0, 0, 0, ifindex or 0)
    if kind == "routes":
        t = table or 0
        body = RTMSG.pack(family, 0, 0, 0, t if t < 256 else 0, 0, 0, 0, 0)
        if t:
            body += nlattr(RTA_TABLE, struct.pack("=I", t))
        if ifindex:
            body += nlattr(RTA_OIF, struct.pack("=I", ifindex))
        return RTM_GETROUTE, body
    if kind == "neigh":
        body = NDMSG.pack(family, 0, 0, 0, 0)
        if ifindex:
            body += nlattr(NDA_IFINDEX, struct.pack("=I", ifindex))
        return RTM_GETNEIGH, body
    if kind == "rules":
        return RTM_GETRULE, FIBRULEHDR.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
    if kind == "nsid":
        return RTM_GETNSID, RTGENMSG.pack(family)
    raise ValueError(kind)


class DumpSocket(NetlinkSocket):
    """A NETLINK_ROUTE socket for dumps: strict checking on, a large read buffer."""

    def __init__(self, protocol: int = NETLINK_ROUTE, *, rcvbuf: int = 4 << 20,
                 strict: bool = True) -> None:
        super().__init__(protocol, rcvbuf=rcvbuf)
        self.strict = False
        if strict:
            try:
                self.sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
                self.strict = True
            except OSError:
                pass  # kernels before 4.20: the caller filters in user space
        self._buf = bytearray(1 << 17)
        self.interrupted = False

    def dump(self, mtype: int, payload: bytes, *, read_ahead: bool = False) -> Iterator[bytes]:
        """Send a dump request; yield each datagram of the reply as it arrives.

        The last one holds NLMSG_DONE. Raises :class:`NetlinkError` when the
        kernel refuses the request; ``interrupted`` is set when the kernel said
        the dump was inconsistent (NLM_F_DUMP_INTR: the table changed meanwhile).
        ``read_ahead``: a thread reads the next datagrams while the caller works
        on this one; the kernel builds each part of a dump inside recv(), so its
        work and the caller's overlap (the same datagrams, in the same order).
        """
        if read_ahead:
            return self._dump_ahead(mtype, payload)
        return self._dump(mtype, payload)

    def _dump(self, mtype: int, payload: bytes) -> Iterator[bytes]:
        self.seq += 1
        msg = NLMSGHDR.pack(NLMSGHDR.size + len(payload), mtype, NLM_F_REQUEST | NLM_F_DUMP,
                            self.seq, 0) + payload
        self.sock.send(msg)
        self.interrupted = False
        buf = self._buf
        recv_into = self.sock.recv_into
        while True:
            n = recv_into(buf)
            data = bytes(buf[:n])
            done, err, intr = message_ends(data)
            if intr:
                self.interrupted = True
            if err:
                raise NetlinkError(err, extack_message(
                    next((r for r in split_messages(data) if r.type in (NLMSG_ERROR, NLMSG_DONE)),
                         NlReply(0, 0, 0, 0, b""))))
            yield data
            if done:
                return

    def _dump_ahead(self, mtype: int, payload: bytes) -> Iterator[bytes]:
        import threading
        from queue import SimpleQueue

        q: SimpleQueue[Any] = SimpleQueue()
        stop = threading.Event()

        def reader() -> None:
            try:
                for data in self._dump(mtype, payload):
                    q.put(data)
                    if stop.is_set():
                        return
                q.put(None)
            except BaseException as exc:  # handed to the consumer, raised there
                q.put(exc)

        t = threading.Thread(target=reader, name="rawlab-dump-ahead", daemon=True)
        t.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:  # also when the caller stops early: the reader ends after one more read,
            stop.set()  # before this socket can be used for anything else
            t.join(timeout=5)

    def link_index(self, name: str) -> int | None:
        """The ifindex of link `name` in this socket's namespace, or None."""
        payload = IFINFOMSG.pack(0, 0, 0, 0, 0) + nlattr(IFLA_IFNAME, name.encode() + b"\0")
        try:
            rep = self.request(RTM_GETLINK, NLM_F_REQUEST, payload)
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                return None
            raise
        for r in rep:
            if r.type == RTM_NEWLINK and len(r.payload) >= IFINFOMSG.size:
                return int(IFINFOMSG.unpack_from(r.payload)[2])
        return None


def set_rcvbuf(sock: socket.socket, size: int) -> int:
    """SO_RCVBUFFORCE (root: past rmem_max), else SO_RCVBUF; returns what the kernel set."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


def open_monitor(groups: list[int], *, all_nsid: bool = False, rcvbuf: int = 64 << 20,
                 ) -> tuple[socket.socket, int]:
    """A NETLINK_ROUTE socket joined to `groups`; returns it and its receive buffer size.

    ``all_nsid``: NETLINK_LISTEN_ALL_NSID, events of every namespace that has an
    nsid here, each with its nsid in the ancillary data.
    """
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    try:
        got = set_rcvbuf(sock, rcvbuf)
        sock.bind((0, 0))
        for g in groups:
            try:
                sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # a group this kernel does not have
                    raise
        sock.setsockopt(SOL_NETLINK, NETLINK_PKTINFO, 1)
        if all_nsid:
            sock.setsockopt(SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, 1)
    except BaseException:
        sock.close()
        raise
    return sock, got


class Drain:
    """Reads a monitor socket in its own thread, as fast as the kernel fills it.

    Decoding happens elsewhere: this thread only moves datagrams from the
    socket's buffer into :attr:`queue`, in batches (a list per wake-up), so a
    burst never waits on the decoder. An ENOBUFS (the kernel dropped messages)
    is counted and queued as ``OVERFLOW`` in place, and reading goes on.
    Items: ``(ts_ns, data, ancillary)`` tuples, or ``OVERFLOW``; ``None`` once
    the drain has stopped (``error`` then says why, if it was not :meth:`stop`).
    """

    OVERFLOW = "overflow"

    def __init__(self, sock: socket.socket, *, bufsize: int = 1 << 16) -> None:
        import queue
        import threading

        self.sock = sock
        self.bufsize = bufsize
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.overflows = 0
        self.datagrams = 0
        self.truncated = 0
        self.error: OSError | None = None
        self._stop_r, self._stop_w = os.pipe()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="rawlab-netlink-drain",
                                        daemon=True)

    def start(self) -> Drain:
        self.sock.setblocking(False)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reading (idempotent); what was read stays in the queue, then ``None``."""
        if self._stopped:
            return
        self._stopped = True
        try:
            os.write(self._stop_w, b"x")
        except OSError:
            pass
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for fd in (self._stop_r, self._stop_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _run(self) -> None:
        import select
        import time

        recvmsg = self.sock.recvmsg
        put = self.queue.put
        clock = time.time_ns
        size = self.bufsize
        anc_size = socket.CMSG_SPACE(4) * 2
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        trunc_flag = socket.MSG_TRUNC
        try:
            while True:
                batch: list[Any] = []
                try:
                    while len(batch) < 4096:
                        data, anc, flags, _addr = recvmsg(size, anc_size)
                        if flags & trunc_flag:
                            self.truncated += 1
                        batch.append((clock(), data, anc))
                except BlockingIOError:
                    pass
                except OSError as exc:
                    if exc.errno != errno.ENOBUFS:
                        raise
                    self.overflows += 1
                    batch.append(self.OVERFLOW)
                if batch:
                    self.datagrams += len(batch) - (batch[-1] is self.OVERFLOW)
                    put(batch)
                    continue
                ready = poller.poll()
                if any(fd == self._stop_r for fd, _ev in ready):
                    return
        except OSError as exc:
            self.error = exc
        finally:
            put(None)


Filter = Callable[[Any], bool]


def dump_buffers(nl: DumpSocket, kind: str, *, family: int = 0, table: int | None = None,
                 ifindex: int | None = None,
                 read_ahead: bool = False) -> tuple[Iterator[bytes], Filter | None]:
    """(the buffers of one dump as they arrive, the filter to apply in user space or None).

    The kernel filters (strict checking); what it cannot filter (rule tables,
    or everything on kernels without strict checking) the returned predicate does.
    It reads only ``family`` and the fields in :data:`FILTER_FIELDS`.
    """
    mtype, payload = dump_request(kind, family=family, table=table, ifindex=ifindex)
    wanted = None
    if kind == "rules" or not nl.strict:
        def wanted(m: Any) -> bool:
            return _wanted(m, kind, family, table, ifindex)
    return nl.dump(mtype, payload, read_ahead=read_ahead), wanted


# the header fields and attributes the user-space filter reads
FILTER_FIELDS = frozenset({"table", "index", "ifindex", "RTA_TABLE", "RTA_OIF", "FRA_TABLE"})


def dump_messages(nl: DumpSocket, kind: str, *, family: int = 0, table: int | None = None,
                  ifindex: int | None = None) -> Iterator[Any]:
    """Decoded objects of one dump (rawlab.decode.rtnl.RtMsg), streamed as datagrams arrive."""
    from rawlab.decode.rtnl import decode_buffer

    bufs, wanted = dump_buffers(nl, kind, family=family, table=table, ifindex=ifindex)
    for buf in bufs:
        for m in decode_buffer(buf):
            if m.type < 16:
                continue
            if wanted is not None and not wanted(m):
                continue
            yield m


def _wanted(m: Any, kind: str, family: int, table: int | None, ifindex: int | None) -> bool:
    if family and m.family != family:
        return False
    a, h = m.attrs, m.header
    if kind == "routes":
        t = a.get("RTA_TABLE", h.get("table"))
        return (not table or t == table) and (not ifindex or a.get("RTA_OIF") == ifindex)
    if kind == "rules":
        return not table or a.get("FRA_TABLE", h.get("table")) == table
    if kind == "addrs":
        return not ifindex or h.get("index") == ifindex
    if kind == "neigh":
        return not ifindex or h.get("ifindex") == ifindex
    return True


IFF_UP = 0x1


def link_set_up(nl: NetlinkSocket, ifname: str) -> None:
    """`ip link set IFNAME up`."""
    payload = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, IFF_UP, IFF_UP) + nlattr(
        IFLA_IFNAME, ifname.encode() + b"\0")
    nl.request(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, payload)


PACKET_USER = 6
PACKET_KERNEL = 7


def nlmon_direction(pkttype: int, data: bytes) -> str:
    """"to_kernel" or "to_user" for a message an nlmon device passed on.

    nlmon marks the receiving socket in skb->pkt_type (PACKET_KERNEL 7, PACKET_USER
    6), but AF_PACKET taps see a device's transmit path, where the kernel resets
    it to PACKET_OUTGOING (4): then the first message's NLM_F_REQUEST flag tells
    (requests go to the kernel; replies, ACKs and notifications come from it).
    """
    if pkttype == PACKET_KERNEL:
        return "to_kernel"
    if pkttype == PACKET_USER:
        return "to_user"
    if len(data) >= 8 and struct.unpack_from("=H", data, 6)[0] & NLM_F_REQUEST:
        return "to_kernel"
    return "to_user"
