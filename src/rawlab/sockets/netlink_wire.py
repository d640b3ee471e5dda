"""The netlink wire format: nlmsghdr framing, nlattr TLVs, NLMSG_ERROR / NLMSG_DONE, extended ACK.

Netlink's own framing is the netlink family's transport, as TPACKET headers are
AF_PACKET's, so it sits with the sockets; every family decoder in ``decode/``
(rtnetlink, generic netlink, sock_diag) and the socket I/O in
:mod:`rawlab.sockets.netlink` build on these pure functions of bytes (no I/O):

    for m in messages(buf):                    # NlMsg, one per nlmsghdr
        m.len, m.type, m.flags, m.seq, m.pid   # ints (nlmsg_*)
        m.offset, m.end, m.payload             # where it sits in buf; the bytes after nlmsghdr
        m.truncated, m.malformed               # set on the last message when the bytes end early
        m.error, m.extack                      # NLMSG_ERROR / NLMSG_DONE: -errno, the kernel's text
    for atype, start, end in attributes(buf, start, end):
        ...                                    # each nlattr; atype keeps NLA_F_* and the marks

Headers are in the byte order of the host that made them: ``"="`` (this machine)
unless a capture from another kind of machine says ``"<"`` or ``">"``.

A walk never raises: a message whose length runs past the bytes is yielded with
``truncated`` set, one whose length is below its header with ``malformed`` set,
and the walk ends there. An attribute walk marks the type of a bad attribute
with :data:`ATTR_TRUNCATED` (its value is cut where the bytes end) or
:data:`ATTR_MALFORMED` (a length below the header; the value is the rest), and
bytes too few for one more header with :data:`ATTR_LEFTOVER`.

:class:`NlMsg` is the one netlink message type: these functions fill its header
fields; a family decoder (``decode.rtnl``) fills ``family``, ``header`` and
``attrs`` with what the family's maps say.
"""

from __future__ import annotations

import errno
import re
import struct
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

# netlink protocols (linux/netlink.h)
NETLINK_ROUTE = 0
NETLINK_USERSOCK = 2
NETLINK_SOCK_DIAG = 4
NETLINK_NFLOG = 5
NETLINK_XFRM = 6
NETLINK_AUDIT = 9
NETLINK_FIB_LOOKUP = 10
NETLINK_NETFILTER = 12
NETLINK_KOBJECT_UEVENT = 15
NETLINK_GENERIC = 16

# message types below NLMSG_MIN_TYPE are netlink's own
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
NLMSG_MIN_TYPE = 0x10

# nlmsg_flags; the upper byte means different things per request kind
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_ECHO = 0x08
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP_FILTERED = 0x20
NLM_F_ROOT = 0x100  # GET
NLM_F_MATCH = 0x200
NLM_F_ATOMIC = 0x400
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100  # NEW
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
NLM_F_CAPPED = 0x100  # NLMSG_ERROR: the original message is cut to its header
NLM_F_ACK_TLVS = 0x200  # NLMSG_ERROR / NLMSG_DONE: extended ACK attributes follow

# extended ACK attributes (enum nlmsgerr_attrs)
NLMSGERR_ATTR_MSG = 1

# nlattr type bits
NLA_F_NESTED = 0x8000
NLA_F_NET_BYTEORDER = 0x4000
NLA_TYPE_MASK = 0x3FFF

# marks an attribute walk adds above the 16 bits of nla_type
ATTR_TRUNCATED = 1 << 16  # nla_len runs past the end: the value is what there is
ATTR_MALFORMED = 1 << 17  # nla_len below the header: the value is the rest
ATTR_LEFTOVER = 1 << 18  # bytes after the last attribute, too few for a header
ATTR_BAD = ATTR_TRUNCATED | ATTR_MALFORMED | ATTR_LEFTOVER

NLMSG_HDRLEN = 16
NLA_HDRLEN = 4
NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLATTR = struct.Struct("=HH")  # len, type
_I32 = struct.Struct("=i")

# the same structs in each byte order a capture may need
_HDR = {o: struct.Struct(o + "IHHII").unpack_from for o in "=<>"}
_ATTR = {o: struct.Struct(o + "HH").unpack_from for o in "=<>"}
_I32S = {o: struct.Struct(o + "i").unpack_from for o in "=<>"}


NOTHING: Mapping[str, Any] = MappingProxyType({})  # header and attrs until a decoder reads them


def align4(n: int) -> int:
    """NLMSG_ALIGN / NLA_ALIGN."""
    return (n + 3) & ~3


def nlattr(atype: int, payload: bytes) -> bytes:
    """One attribute: header, payload, padding to 4 bytes."""
    raw = NLATTR.pack(NLA_HDRLEN + len(payload), atype) + payload
    return raw + b"\0" * (-len(raw) % 4)


def nlmsg(mtype: int, flags: int, seq: int, pid: int, payload: bytes) -> bytes:
    """One message: nlmsghdr (its length filled in), then the payload."""
    return NLMSGHDR.pack(NLMSG_HDRLEN + len(payload), mtype, flags, seq, pid) + payload


class NlMsg:
    """One netlink message: its nlmsghdr, where it sits, and what a decoder read from it.

    ``buf`` is the whole datagram or captured record; the message is
    ``buf[offset:end]``. ``protocol`` is the netlink family (NETLINK_ROUTE ...)
    when the reader knew it. ``error`` is the (negative errno, 0 for an ACK) of an
    NLMSG_ERROR or NLMSG_DONE and ``extack`` the kernel's text for it. ``family``
    (the address family of the family header), ``header`` (its fields by name) and
    ``attrs`` (attributes by name) are filled by a family decoder; so are ``name``
    (the type's name where only the context knows it: a generic netlink family's
    name for its dynamic id, an nfnetlink message's) and ``cmd`` (a generic netlink
    command's name).
    """

    __slots__ = ("attrs", "buf", "cmd", "error", "extack", "family", "flags", "header", "len",
                 "malformed", "name", "offset", "pid", "protocol", "seq", "truncated", "type")

    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("len", 0, 4), ("type", 4, 2), ("flags", 6, 2), ("seq", 8, 4), ("pid", 12, 4),
    )

    def __init__(self, buf: Any, offset: int, length: int, mtype: int, flags: int, seq: int,
                 pid: int, protocol: int | None = None) -> None:
        self.buf = buf
        self.offset = offset
        self.len = length
        self.type = mtype
        self.flags = flags
        self.seq = seq
        self.pid = pid
        self.protocol = protocol
        self.truncated = False
        self.malformed = False
        self.error: int | None = None
        self.extack: str | None = None
        self.family: int | None = None
        self.header: Mapping[str, Any] = NOTHING
        self.attrs: Mapping[str, Any] = NOTHING
        self.name: str | None = None
        self.cmd: str | None = None

    @property
    def ok(self) -> bool:
        """Whole and consistent: neither truncated nor malformed."""
        return not (self.truncated or self.malformed)

    @property
    def end(self) -> int:
        """Where the message ends in ``buf`` (the end of ``buf`` if it is cut short)."""
        return min(self.offset + max(self.len, NLMSG_HDRLEN), len(self.buf))

    @property
    def payload(self) -> bytes:
        """The bytes after nlmsghdr."""
        return bytes(self.buf[self.offset + NLMSG_HDRLEN:self.end])

    @property
    def next_offset(self) -> int:
        """Where the next message starts in ``buf``; -1 when this one ends the walk."""
        if self.len < NLMSG_HDRLEN or self.offset + self.len > len(self.buf):
            return -1
        return self.offset + align4(self.len)

    def fields(self) -> dict[str, Any]:
        return {"len": self.len, "type": self.type, "flags": self.flags, "seq": self.seq,
                "pid": self.pid}

    def __repr__(self) -> str:
        marks = " truncated" * self.truncated + " malformed" * self.malformed
        return f"<NlMsg @{self.offset} {self.fields()} {self.header} {self.attrs}{marks}>"


def messages(buf: Any, offset: int = 0, protocol: int | None = None,
             byteorder: str = "=") -> Iterator[NlMsg]:
    """Every message from ``buf[offset]`` on, NLMSG_ALIGNed one after another (never raises).

    The walk ends after a message marked truncated or malformed, and before
    bytes too few for a header (compare the last message's ``next_offset`` with
    ``len(buf)`` to tell). NLMSG_ERROR and NLMSG_DONE get ``error`` and ``extack``.
    """
    hdr = _HDR[byteorder]
    n = len(buf)
    while offset + NLMSG_HDRLEN <= n:
        length, mtype, flags, seq, pid = hdr(buf, offset)
        m = NlMsg(buf, offset, length, mtype, flags, seq, pid, protocol)
        if length < NLMSG_HDRLEN:
            m.malformed = True
            yield m
            return
        if offset + length > n:
            m.truncated = True
        if mtype < NLMSG_MIN_TYPE and mtype in (NLMSG_ERROR, NLMSG_DONE):
            error_of(m, byteorder)
        yield m
        if m.truncated:
            return
        offset += (length + 3) & ~3


def error_of(m: NlMsg, byteorder: str = "=") -> None:
    """Fill ``error`` and ``extack`` of an NLMSG_ERROR or NLMSG_DONE.

    NLMSG_ERROR: error (i32), the original nlmsghdr and, unless NLM_F_CAPPED,
    its payload; NLMSG_DONE of a failed dump: error (i32). With NLM_F_ACK_TLVS,
    extended ACK attributes follow.
    """
    body, end = m.offset + NLMSG_HDRLEN, m.end
    if end - body < 4:
        return
    buf = m.buf
    m.error = _I32S[byteorder](buf, body)[0]
    start = body + 4
    if m.type == NLMSG_ERROR:
        if end - start < NLMSG_HDRLEN:
            return
        orig_len = _HDR[byteorder](buf, start)[0]
        start += NLMSG_HDRLEN if m.flags & NLM_F_CAPPED else align4(orig_len)
    if m.flags & NLM_F_ACK_TLVS:
        m.extack = extack(buf, start, end, byteorder)


def extack(buf: Any, start: int, end: int, byteorder: str = "=") -> str | None:
    """The NLMSGERR_ATTR_MSG text among the extended ACK attributes in ``buf[start:end]``."""
    for atype, p, q in attributes(buf, start, end, byteorder):
        if atype & (ATTR_MALFORMED | ATTR_LEFTOVER):
            break
        if atype & NLA_TYPE_MASK == NLMSGERR_ATTR_MSG:
            return bytes(buf[p:q]).partition(b"\0")[0].decode("utf-8", "replace")
    return None


def attributes(buf: Any, start: int, end: int,
               byteorder: str = "=") -> Iterator[tuple[int, int, int]]:
    """``(nla_type, value start, value end)`` of each attribute in ``buf[start:end]``.

    ``nla_type`` keeps NLA_F_NESTED and NLA_F_NET_BYTEORDER (mask with
    NLA_TYPE_MASK). A bad attribute ends the walk, yielded with ATTR_TRUNCATED
    or ATTR_MALFORMED in its type; a tail too short for a header is yielded as
    ``(ATTR_LEFTOVER, where it starts, end)``. Test ``atype > 0xFFFF`` for any mark.
    """
    hh = _ATTR[byteorder]
    end = min(end, len(buf))
    pos = start
    while pos + NLA_HDRLEN <= end:
        ln, atype = hh(buf, pos)
        if ln < NLA_HDRLEN:
            yield atype | ATTR_MALFORMED, pos + NLA_HDRLEN, end
            return
        nxt = pos + ln
        if nxt > end:
            yield atype | ATTR_TRUNCATED, pos + NLA_HDRLEN, end
            return
        yield atype, pos + NLA_HDRLEN, nxt
        pos = (nxt + 3) & ~3
    if pos < end:
        yield ATTR_LEFTOVER, pos, end


def attr_items(buf: Any, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
    """``(type, value)`` of each whole attribute in ``buf[start:end]`` (NLA_F_* masked off);
    a bad one ends the walk, unyielded."""
    for atype, p, q in attributes(buf, start, len(buf) if end is None else end):
        if atype > 0xFFFF:
            return
        yield atype & NLA_TYPE_MASK, bytes(buf[p:q])


def attr_map(buf: Any, start: int = 0, end: int | None = None) -> dict[int, bytes]:
    """``{type: value}`` of a flat attribute run, as :func:`attr_items` (a repeated type:
    its first)."""
    out: dict[int, bytes] = {}
    for atype, value in attr_items(buf, start, end):
        out.setdefault(atype, value)
    return out


# ---- the end of a dump, found fast ------------------------------------------------

_RUNS: dict[bytes, Any] = {}


def _run_of(head: bytes, step: int) -> Any:
    """A compiled regex matching consecutive messages that share this nlmsghdr prefix."""
    run = _RUNS.get(head)
    if run is None:
        if len(_RUNS) > 256:
            _RUNS.clear()
        run = _RUNS[head] = re.compile(
            b"(?:" + re.escape(head) + b".{%d})*" % (step - len(head)), re.DOTALL).match
    return run


def message_runs(buf: Any) -> Iterator[tuple[int, int, int]]:
    """``(offset, step, count)`` of each run of consecutive messages in ``buf`` that share
    their nlmsghdr length, type and flags (most of a dump): ``count`` messages of ``step``
    bytes (NLMSG_ALIGNed) from ``offset``, stepped over by one regular-expression match.

    A message whose length is below a header's ends the walk (yielded alone, step 0);
    so does one cut short by the end of ``buf`` (yielded alone). Reads only the headers.
    (:func:`message_ends` steps over runs the same way, inline: it reads every datagram
    of every dump.)
    """
    off, n = 0, len(buf)
    unpack = NLMSGHDR.unpack_from
    while off + NLMSG_HDRLEN <= n:
        length = unpack(buf, off)[0]
        if length < NLMSG_HDRLEN:
            yield off, 0, 1
            return
        step = (length + 3) & ~3
        end = off + step
        if off + 2 * step <= n:  # same length, type, flags: a run
            end = max(end, _run_of(bytes(buf[off:off + 8]), step)(buf, off).end())
        yield off, step, (end - off) // step
        off = end


def message_ends(buf: Any) -> tuple[bool, int | None, int]:
    """(the dump ended here, errno if it ended in an error, NLM_F_DUMP_INTR seen) for one buffer.

    Reads only nlmsghdr (lengths, types and flags), not the payloads; a run of
    messages with the same length, type and flags (most of a dump) is stepped
    over by one regular-expression match.
    """
    off, n = 0, len(buf)
    intr = 0
    unpack = NLMSGHDR.unpack_from
    while off + NLMSG_HDRLEN <= n:
        length, mtype, flags, _seq, _pid = unpack(buf, off)
        if length < NLMSG_HDRLEN:
            return True, errno.EBADMSG, intr
        intr |= flags & NLM_F_DUMP_INTR
        if mtype in (NLMSG_DONE, NLMSG_ERROR):
            err = _I32.unpack_from(buf, off + NLMSG_HDRLEN)[0] if length >= 20 else 0
            if mtype == NLMSG_DONE:
                return True, -err if err < 0 else None, intr
            return True, -err if err else None, intr
        step = (length + 3) & ~3
        if mtype >= NLMSG_MIN_TYPE and off + 2 * step <= n:  # same length, type, flags: a run
            end = _run_of(bytes(buf[off:off + 8]), step)(buf, off).end()
            off = end if end > off else off + step
            continue
        off += step
    return False, None, intr
