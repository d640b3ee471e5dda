"""Classic BPF: tcpdump filter expressions compiled by libpcap, attached to sockets.

    prog = compile_filter("udp port 53", LinkType.ETHERNET)   # -> BpfProgram (libpcap's code)
    prog.dump()                     # the same text as `tcpdump -ddd` (count, then code jt jf k)
    kprog = for_kernel(prog, cooked_hdrlen=0, snaplen=262144)  # what the socket should run
    attach(sock, kprog)             # SO_ATTACH_FILTER
    reject_all()                    # a program that accepts nothing

libpcap is called through ctypes (``pcap_open_dead`` + ``pcap_compile``), not
through scapy: scapy's ``compile_filter`` fixes the snap length at 65535 (the
program's ``ret #65535`` would then truncate GRO/GSO packets in the kernel),
does not expose the link type's header length and costs a second of import.

A bad expression raises :class:`RawlabError` (``Exit.USAGE``) carrying libpcap's
own message. libpcap missing raises ``Exit.UNSUPPORTED``.

Cooked captures (the ``any`` device, SOCK_DGRAM sockets) see packets in the
kernel *without* the LINUX_SLL/SLL2 header that the filter was compiled for;
:func:`for_kernel` rewrites the program as libpcap's ``fix_program`` does:
loads past the header move back by its length, loads of the header's
protocol/pkttype/ifindex/hatype fields become ``SKF_AD_*`` ancillary loads.

VLAN: libpcap compiles *live* Linux handles with "special VLAN handling"
(``vlan`` tests ``SKF_AD_VLAN_TAG_PRESENT``, because the kernel strips received
tags into metadata before the filter runs); a dead handle tests the in-line
802.1Q header, as ``tcpdump -r`` does. A live capture must use the former, or
``vlan 42`` never matches a received tagged frame: pass ``live_iface`` (the
capture's Ethernet interface, in the current thread's namespace) and the
program is compiled on an activated libpcap handle for it, exactly as
``tcpdump -i IFACE`` compiles it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Protocol

from rawlab.errors import Exit, RawlabError, explain

__all__ = [
    "MAXIMUM_SNAPLEN",
    "BpfProgram",
    "accept_all",
    "attach",
    "compile_filter",
    "detach",
    "for_kernel",
    "reject_all",
]

MAXIMUM_SNAPLEN = 262144  # libpcap's and tcpdump's default snap length
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF

SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
SO_LOCK_FILTER = 44

# BPF instruction classes, modes and sizes (linux/filter.h, pcap/bpf.h)
BPF_LD = 0x00
BPF_LDX = 0x01
BPF_RET = 0x06
BPF_W = 0x00
BPF_H = 0x08
BPF_B = 0x10
BPF_K = 0x00
BPF_ABS = 0x20
BPF_IND = 0x40
BPF_MSH = 0xA0

SKF_AD_OFF = -0x1000 & 0xFFFFFFFF
SKF_AD_PROTOCOL = 0
SKF_AD_PKTTYPE = 4
SKF_AD_IFINDEX = 8
SKF_AD_HATYPE = 28

SLL_HDR_LEN = 16
SLL2_HDR_LEN = 20

# LINKTYPE_* (files) -> DLT_* (what pcap_open_dead wants) where they differ on Linux.
_LINKTYPE_TO_DLT = {101: 12}  # LINKTYPE_RAW -> DLT_RAW

_INSN = struct.Struct("=HBBI")  # struct sock_filter / struct bpf_insn


class _Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_Insn))]


@dataclass(frozen=True, slots=True)
class BpfProgram:
    """A classic BPF program: ``insns`` are ``(code, jt, jf, k)`` tuples.

    ``expression``, ``linktype`` and ``snaplen`` say what it was compiled from
    (``expression`` is ``None`` for hand-built programs).
    """

    insns: tuple[tuple[int, int, int, int], ...]
    expression: str | None = None
    linktype: int | None = None
    snaplen: int = MAXIMUM_SNAPLEN

    def __len__(self) -> int:
        return len(self.insns)

    def pack(self) -> bytes:
        """The instructions as an array of ``struct sock_filter`` (host byte order)."""
        return b"".join(_INSN.pack(*i) for i in self.insns)

    def dump(self) -> str:
        """The program as ``tcpdump -ddd`` prints it: the count, then "code jt jf k" lines."""
        return "\n".join([str(len(self.insns)), *(f"{c} {t} {f} {k}" for c, t, f, k in self.insns)])


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


_lock = threading.Lock()  # pcap_compile is not reentrant in every libpcap
_libpcap: ctypes.CDLL | None = None


def _pcap() -> ctypes.CDLL:
    global _libpcap  # noqa: PLW0603 - loaded once, lazily (no import-time side effects)
    if _libpcap is None:
        name = ctypes.util.find_library("pcap") or "libpcap.so.0.8"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            raise RawlabError(
                "compile filter failed: libpcap is not installed; fix: install it "
                "(Debian: apt install libpcap0.8)", Exit.UNSUPPORTED) from None
        lib.pcap_open_live.restype = ctypes.c_void_p
        lib.pcap_open_live.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                       ctypes.c_char_p]
        lib.pcap_datalink.restype = ctypes.c_int
        lib.pcap_datalink.argtypes = [ctypes.c_void_p]
        lib.pcap_open_dead.restype = ctypes.c_void_p
        lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.pcap_compile.restype = ctypes.c_int
        lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Program), ctypes.c_char_p,
                                     ctypes.c_int, ctypes.c_uint32]
        lib.pcap_geterr.restype = ctypes.c_char_p
        lib.pcap_geterr.argtypes = [ctypes.c_void_p]
        lib.pcap_freecode.argtypes = [ctypes.POINTER(_Program)]
        lib.pcap_close.argtypes = [ctypes.c_void_p]
        _libpcap = lib
    return _libpcap


def compile_filter(expression: str, linktype: int, snaplen: int = MAXIMUM_SNAPLEN, *,
                   optimize: bool = True, netmask: int = PCAP_NETMASK_UNKNOWN,
                   live_iface: str | None = None) -> BpfProgram:
    """Compile a tcpdump filter for packets of ``linktype`` (a LINKTYPE_* number).

    The result is exactly what ``tcpdump -ddd -r FILE`` shows for a file of that
    link type and snap length; with ``live_iface`` what ``tcpdump -ddd -i IFACE``
    shows (live handle: special VLAN handling; falls back to the file form when
    the interface cannot be opened or has another link type). Raises
    RawlabError(Exit.USAGE) with libpcap's message when the expression is bad
    (or not valid for this link type).
    """
    lib = _pcap()
    dlt = _LINKTYPE_TO_DLT.get(linktype, linktype)
    with _lock:
        handle = None
        if live_iface:
            errbuf = ctypes.create_string_buffer(256)
            handle = lib.pcap_open_live(live_iface.encode(), snaplen, 0, 0, errbuf)
            if handle and lib.pcap_datalink(handle) != dlt:
                lib.pcap_close(handle)
                handle = None
        if not handle:
            handle = lib.pcap_open_dead(dlt, snaplen)
        if not handle:
            raise RawlabError(f"compile filter failed: libpcap could not open a handle for "
                              f"link type {linktype}", Exit.FAILED)
        try:
            prog = _Program()
            if lib.pcap_compile(handle, ctypes.byref(prog), expression.encode(),
                                int(optimize), netmask) != 0:
                msg = (lib.pcap_geterr(handle) or b"unknown error").decode(errors="replace")
                raise RawlabError(
                    f"bad filter {expression!r}: {msg}; fix: use tcpdump filter syntax "
                    "(`man pcap-filter`; `tcpdump -d EXPR` checks it)", Exit.USAGE)
            try:
                insns = tuple((prog.bf_insns[i].code, prog.bf_insns[i].jt, prog.bf_insns[i].jf,
                               prog.bf_insns[i].k) for i in range(prog.bf_len))
            finally:
                lib.pcap_freecode(ctypes.byref(prog))
        finally:
            lib.pcap_close(handle)
    return BpfProgram(insns, expression, linktype, snaplen)


def _fix_offset(k: int, cooked_hdrlen: int) -> int | None:
    """libpcap's fix_offset(): a packet offset in the cooked record → one in the kernel's skb."""
    if k >= SKF_AD_OFF:  # already ancillary data (e.g. `inbound`): leave it
        return k
    if cooked_hdrlen == SLL2_HDR_LEN:
        if k >= SLL2_HDR_LEN:
            return k - SLL2_HDR_LEN
        return {0: SKF_AD_OFF + SKF_AD_PROTOCOL, 4: SKF_AD_OFF + SKF_AD_IFINDEX,
                8: SKF_AD_OFF + SKF_AD_HATYPE, 10: SKF_AD_OFF + SKF_AD_PKTTYPE}.get(k)
    if k >= SLL_HDR_LEN:
        return k - SLL_HDR_LEN
    return {0: SKF_AD_OFF + SKF_AD_PKTTYPE, 14: SKF_AD_OFF + SKF_AD_PROTOCOL}.get(k)


def for_kernel(prog: BpfProgram, *, cooked_hdrlen: int = 0,
               snaplen: int = MAXIMUM_SNAPLEN) -> BpfProgram:
    """The program a packet socket should run (libpcap's ``fix_program``).

    Every non-zero constant return becomes ``snaplen``: the kernel truncates
    each packet to the filter's return value, so this is where the snap length
    is applied (saving ring space). With ``cooked_hdrlen`` 16 or 20 (SOCK_DGRAM:
    the kernel runs the filter on the packet *without* the SLL/SLL2 header the
    program was compiled for) packet offsets are moved back by that length and
    header fields become ancillary loads. Raises RawlabError(Exit.USAGE) when the
    program reads a header byte the kernel has no equivalent for.
    """
    out = []
    for code, jt, jf, k0 in prog.insns:
        k = k0
        cls = code & 0x07
        if cls == BPF_RET and (code & 0x18) == BPF_K and k != 0:
            k = snaplen
        elif cls in (BPF_LD, BPF_LDX) and (code & 0xE0) in (BPF_ABS, BPF_IND, BPF_MSH) \
                and cooked_hdrlen:
            fixed = _fix_offset(k, cooked_hdrlen)
            if fixed is None:
                raise RawlabError(
                    f"filter {prog.expression!r} reads byte {k} of the cooked header, which "
                    "the kernel cannot filter on; fix: capture on one interface (-i IFACE) "
                    "or filter on other fields", Exit.USAGE)
            k = fixed
        out.append((code, jt, jf, k))
    return BpfProgram(tuple(out), prog.expression, prog.linktype, snaplen)


def accept_all(snaplen: int = MAXIMUM_SNAPLEN) -> BpfProgram:
    """``ret #snaplen``: accept every packet, truncated to ``snaplen`` in the kernel."""
    return BpfProgram(((BPF_RET | BPF_K, 0, 0, snaplen),), None, None, snaplen)


def reject_all() -> BpfProgram:
    """``ret #0``: accept nothing."""
    return BpfProgram(((BPF_RET | BPF_K, 0, 0, 0),), None, None, 0)


def attach(sock: socket.socket | _HasFileno | int, prog: BpfProgram, *, op: str = "") -> None:
    """SO_ATTACH_FILTER: replace the socket's filter by ``prog`` (the kernel copies it)."""
    if not prog.insns:
        raise RawlabError("attach filter failed: empty BPF program", Exit.USAGE)
    code = prog.pack()
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HxxxxxxP", len(prog.insns), ctypes.addressof(buf))
    s = sock if isinstance(sock, socket.socket) else socket.socket(fileno=_fd(sock))
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError as exc:
        raise explain(exc, op or "attach BPF filter (SO_ATTACH_FILTER)") from None
    finally:
        if s is not sock:
            s.detach()


def detach(sock: socket.socket) -> None:
    """SO_DETACH_FILTER: remove the filter (ENOENT when there is none is ignored)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
    except OSError as exc:
        if exc.errno != 2:
            raise explain(exc, "detach BPF filter") from None


def _fd(sock: _HasFileno | int) -> int:
    return sock if isinstance(sock, int) else sock.fileno()


class OfflineFilter:
    """tcpdump filters on records read from files, with tcpdump -r's semantics: the
    expression is compiled for each link type met (pcapng files may mix them) and run
    with libpcap's own BPF interpreter (``bpf_filter``), so rawlab and tcpdump select
    the same packets.

    `match(linktype, data, wirelen)` is True when the expression selects the packet."""

    def __init__(self, expression: str, snaplen: int = MAXIMUM_SNAPLEN):
        self.expression = expression
        self.snaplen = snaplen
        self._progs: dict[int, ctypes.Array[_Insn] | None] = {}
        lib = _pcap()
        fn = lib.bpf_filter
        fn.restype = ctypes.c_uint
        fn.argtypes = [ctypes.POINTER(_Insn), ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint]
        self._run = fn
        compile_filter(expression, 1, snaplen)  # fail early on a bad expression

    def _program(self, linktype: int) -> ctypes.Array[_Insn] | None:
        if linktype not in self._progs:
            try:
                prog = compile_filter(self.expression, linktype, self.snaplen)
            except RawlabError as exc:
                # valid syntax, but meaningless for this link type (e.g. `tcp` on netlink)
                raise RawlabError(f"{exc.message} (for link type {linktype})", Exit.USAGE) from None
            arr = (_Insn * len(prog.insns))(*(_Insn(*i) for i in prog.insns))
            self._progs[linktype] = arr
        return self._progs[linktype]

    def match(self, linktype: int, data: bytes, wirelen: int) -> bool:
        prog = self._program(linktype)
        if prog is None:
            return False
        return self._run(prog, data, wirelen, len(data)) != 0
