"""Raw AF_NETLINK sockets of our own: open, send a request, read every reply.

The framing (nlmsghdr, nlattr, NLMSG_ERROR and its extended ACK) is
:mod:`rawlab.sockets.netlink_wire`'s; replies come back as its :class:`NlMsg`,
undecoded: the family decoders of ``decode/`` read them. Netlink headers are in
host byte order (native ``"="``, so the code stays right on any machine).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

from rawlab.sockets.netlink_wire import (
    NETLINK_ROUTE,
    NLA_F_NESTED,
    NLA_TYPE_MASK,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_MULTI,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_HDRLEN,
    NLMSGHDR,
    NlMsg,
    attr_map,
    attributes,
    message_ends,
    message_runs,
    messages,
    nlattr,
    nlmsg,
)

SOL_NETLINK = 270
AHEAD = 64  # datagrams a dump's read-ahead thread may hold before the caller takes them
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12

# rtnetlink
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_GETADDR = 22
RTM_GETROUTE = 26
RTM_GETNEIGH = 30
RTM_GETRULE = 34
RTM_GETNSID = 90
IFLA_IFNAME = 3
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
IFLA_EXT_MASK = 29
RTEXT_FILTER_VF = 1
RTEXT_FILTER_SKIP_STATS = 8
RTA_OIF = 4
RTA_TABLE = 15
NDA_IFINDEX = 8
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFF_UP = 0x1

# sock_diag
SOCK_DIAG_BY_FAMILY = 20

IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
RTMSG = struct.Struct("=BBBBBBBBI")  # family dst_len src_len tos table protocol scope type flags
IFADDRMSG = struct.Struct("=BBBBI")  # family prefixlen flags scope index
NDMSG = struct.Struct("=BxxxiHBB")  # family ifindex state flags type
FIBRULEHDR = struct.Struct("=BBBBBBBBI")
RTGENMSG = struct.Struct("=Bxxx")


class NetlinkError(OSError):
    """An NLMSG_ERROR with a negative errno, and the kernel's extended ACK text."""

    def __init__(self, err: int, extack: str | None):
        text = os.strerror(err) + (f" ({extack})" if extack else "")
        super().__init__(err, text)
        self.extack = extack

    def refused(self, op: str) -> Any:
        """A RawlabError for ``op``: the kernel's own words (the extended ACK) when it gave
        them, as `ip` prints them; an object the request named that does not exist
        (ENOENT, ENODEV, ESRCH) is the caller's mistake (exit 2), not a missing kernel
        feature. Without the kernel's text: the errno's usual advice."""
        from rawlab.errors import Exit, RawlabError, explain

        err = self.errno or 0
        if not self.extack:
            return explain(self, op)
        name = errno.errorcode.get(err, str(err))
        missing = err in (errno.ENOENT, errno.ENODEV, errno.ESRCH)
        fix = "name one that exists" if missing else "change the request as the kernel says"
        return RawlabError(f"{op} failed: the kernel said: {self.extack} ({name}); fix: {fix}",
                           Exit.USAGE if missing else Exit.FAILED, errno_=err)


class NetlinkSocket:
    """A raw netlink socket that sends one request and collects the reply."""

    def __init__(self, protocol: int, *, rcvbuf: int = 1 << 20):
        self.protocol = protocol
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

    def request(self, mtype: int, flags: int, payload: bytes) -> list[NlMsg]:
        """Send one request; return the replies up to the ACK or NLMSG_DONE (undecoded).

        Raises :class:`NetlinkError` when the kernel answers with an error.
        """
        self.seq += 1
        seq = self.seq
        self.sock.send(nlmsg(mtype, flags, seq, 0, payload))
        replies: list[NlMsg] = []
        while True:
            buf = self.sock.recv(1 << 16)
            for m in messages(buf, 0, self.protocol):
                if m.seq != seq or not m.ok:
                    continue
                if m.type in (NLMSG_ERROR, NLMSG_DONE):
                    if m.error is not None and m.error < 0:
                        raise NetlinkError(-m.error, m.extack)
                    return replies  # the ACK, or the end of a dump
                replies.append(m)
                if not m.flags & NLM_F_MULTI and not flags & NLM_F_ACK:
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


# ---- dumps (rawlab netlink dump) ---------------------------------------------------

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


RTA_DST, RTA_SRC, RTA_IIF, RTA_MARK = 1, 2, 3, 16


def route_get_request(dst: bytes, src: bytes | None = None, *, iif: int | None = None,
                      oif: int | None = None, mark: int | None = None,
                      ) -> tuple[int, int, bytes]:
    """(type, flags, payload) of `ip route get DST [from SRC] [iif] [oif] [mark]`."""
    family = socket.AF_INET if len(dst) == 4 else socket.AF_INET6
    body = RTMSG.pack(family, len(dst) * 8, len(src) * 8 if src else 0, 0, 0, 0, 0, 0, 0)
    body += nlattr(RTA_DST, dst)
    if src:
        body += nlattr(RTA_SRC, src)
    if iif:
        body += nlattr(RTA_IIF, struct.pack("=I", iif))
    if oif:
        body += nlattr(RTA_OIF, struct.pack("=I", oif))
    if mark is not None:
        body += nlattr(RTA_MARK, struct.pack("=I", mark))
    return RTM_GETROUTE, NLM_F_REQUEST, body


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
        self.sock.send(nlmsg(mtype, NLM_F_REQUEST | NLM_F_DUMP, self.seq, 0, payload))
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
                raise NetlinkError(err, next((m.extack for m in messages(data)
                                              if m.type in (NLMSG_ERROR, NLMSG_DONE)), None))
            yield data
            if done:
                return

    def _dump_ahead(self, mtype: int, payload: bytes) -> Iterator[bytes]:
        from rawlab.prefetch import prefetch

        # bounded: when the caller is slower than the kernel, the reader waits, so a dump of
        # a million routes holds at most AHEAD datagrams in memory (streamed, not collected);
        # a caller that stops early: the reader ends after one more read, before this
        # socket can be used for anything else
        return prefetch(self._dump(mtype, payload), AHEAD, name="rawlab-dump-ahead",
                        join_timeout=5)

    def local_addresses(self) -> set[bytes]:
        """Every address of this socket's namespace (4 or 16 bytes): IFA_LOCAL, else
        IFA_ADDRESS (they differ only on point-to-point links), from one RTM_GETADDR dump.

        A run of messages of one length (:func:`message_runs`) whose attribute headers are
        all those of its first message is read by one ``struct.iter_unpack``: a namespace
        holding 100,000 addresses takes ~0.06 s instead of ~0.45 s (rawlab capture
        --processes asks every namespace at start)."""
        out: set[bytes] = set()
        for data in self.dump(*dump_request("addrs")):
            for off, step, count in message_runs(data):
                if NLMSGHDR.unpack_from(data, off)[1] == RTM_NEWADDR:
                    _run_addresses(data, off, step, count, out)
        return out

    def link_index(self, name: str) -> int | None:
        """The ifindex of link `name` in this socket's namespace, or None."""
        payload = IFINFOMSG.pack(0, 0, 0, 0, 0) + nlattr(IFLA_IFNAME, name.encode() + b"\0")
        try:
            rep = self.request(RTM_GETLINK, NLM_F_REQUEST, payload)
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                return None
            raise
        for m in rep:
            if m.type == RTM_NEWLINK and len(m.payload) >= IFINFOMSG.size:
                return int(IFINFOMSG.unpack_from(m.payload)[2])
        return None


def dump_buffers(nl: DumpSocket, kind: str, *, family: int = 0, table: int | None = None,
                 ifindex: int | None = None, read_ahead: bool = False) -> Iterator[bytes]:
    """The buffers of one dump of ``kind`` (:func:`dump_request`), as they arrive.

    The kernel filters when it can (``nl.strict``); what it cannot (rule tables,
    or everything on kernels without strict checking) the caller filters on the
    decoded messages (rawlab.decode.rtnl.dump_filter).
    """
    mtype, payload = dump_request(kind, family=family, table=table, ifindex=ifindex)
    return nl.dump(mtype, payload, read_ahead=read_ahead)


def link_set_up(nl: NetlinkSocket, ifname: str) -> None:
    """`ip link set IFNAME up`."""
    payload = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, IFF_UP, IFF_UP) + nlattr(
        IFLA_IFNAME, ifname.encode() + b"\0")
    nl.request(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, payload)


PACKET_USER = 6
PACKET_KERNEL = 7


def nlmon_direction(pkttype: int, data: Any) -> str:
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
    if len(data) >= NLMSG_HDRLEN and NLMSGHDR.unpack_from(data)[2] & NLM_F_REQUEST:
        return "to_kernel"
    return "to_user"



def _address_of(data: Any, start: int, end: int) -> bytes | None:
    """IFA_LOCAL, else IFA_ADDRESS, of the RTM_NEWADDR message in ``data[start:end]``."""
    attrs = attr_map(data, start + NLMSG_HDRLEN + IFADDRMSG.size, end)
    addr = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
    return bytes(addr) if addr and len(addr) in (4, 16) else None


def _layout(data: Any, off: int, end: int) -> tuple[struct.Struct, int, tuple[Any, ...]] | None:
    """How to read the address of every message laid out as the one in ``data[off:end]``:
    (a struct of its attribute headers and its address, the address's place in a row,
    the row's headers); None when it has no address or a bad attribute."""
    fields: list[tuple[int, int]] = []  # (offset in the message, size)
    local = addr = None
    for atype, p, q in attributes(data, off + NLMSG_HDRLEN + IFADDRMSG.size, end):
        if atype > 0xFFFF:
            return None
        fields.append((p - 4 - off, 4))
        t = atype & NLA_TYPE_MASK
        if t == IFA_LOCAL and local is None:
            local = (p - off, q - p)
        elif t == IFA_ADDRESS and addr is None:
            addr = (p - off, q - p)
    pick = local if local and local[1] else addr
    if pick is None or pick[1] not in (4, 16):
        return None
    fields = sorted([*fields, pick])
    fmt, cur = "=", 0
    for at, size in fields:
        fmt += f"{at - cur}x{size}s"
        cur = at + size
    row = struct.Struct(fmt)
    got = row.unpack_from(data, off)
    return row, fields.index(pick), got


def _run_addresses(data: Any, off: int, step: int, count: int, out: set[bytes]) -> None:
    """The addresses of `count` RTM_NEWADDR messages of `step` bytes from `off` into `out`:
    those laid out as the first (the same attribute headers: then the address is at the
    same place) by one ``struct.iter_unpack``, any other one by one."""
    end = min(off + NLMSGHDR.unpack_from(data, off)[0], len(data))
    layout = _layout(data, off, end) if count > 1 else None
    if layout is None:
        for m in range(off, off + step * count, step):
            got = _address_of(data, m, min(m + step, len(data)))
            if got is not None:
                out.add(got)
        return
    row, i, first = layout
    pre, post = first[:i], first[i + 1:]
    rows = memoryview(data)[off:off + step * count]
    if row.size < step:  # each message a whole step: pad the struct to it
        row = struct.Struct(f"{row.format}{step - row.size}x")
    for n, got in enumerate(row.iter_unpack(rows)):
        if got[:i] == pre and got[i + 1:] == post:
            out.add(got[i])
        else:
            m = off + n * step
            addr = _address_of(data, m, m + step)
            if addr is not None:
                out.add(addr)
