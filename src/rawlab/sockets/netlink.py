"""Raw AF_NETLINK sockets of our own: open, send a request, read every reply.

Netlink headers are in host byte order (little-endian on the machines we run
on; we use native order "=" so the code stays right elsewhere too).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

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
    """The extended ACK text (NLMSGERR_ATTR_MSG) of an NLMSG_ERROR, if any."""
    if not reply.flags & NLM_F_ACK_TLVS or len(reply.payload) < 4 + NLMSGHDR.size:
        return None
    # error (i32), then the original header; its payload too unless capped
    orig_len = NLMSGHDR.unpack_from(reply.payload, 4)[0]
    off = 4 + (NLMSGHDR.size if reply.flags & 0x100 else align4(orig_len))  # 0x100: CAPPED
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
