"""The open sequence: socket, interface, filter, ring, attach, and only then bind, so that
no unfiltered packet ever reaches the ring (see :mod:`rawlab.sockets.packet`).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import socket
import struct
from dataclasses import dataclass, field

from rawlab.errors import Exit, RawlabError, explain
from rawlab.records import LinkType
from rawlab.sockets import bpf as _bpf
from rawlab.sockets.netns import entered
from rawlab.sockets.packet.arphrd import linktype_for_arphrd
from rawlab.sockets.packet.header import (
    ETH_P_ALL,
    PACKET_ADD_MEMBERSHIP,
    PACKET_FANOUT,
    PACKET_MR_PROMISC,
    PACKET_RX_RING,
    PACKET_VERSION,
    SIOCGIFHWADDR,
    SIOCGIFINDEX,
    SOL_PACKET,
    TPACKET_V3,
)
from rawlab.sockets.packet.options import Fanout, MiB, RingConfig
from rawlab.sockets.packet.ring import PacketRing, _ring_error

ANY = "any"

_libc = ctypes.CDLL(None, use_errno=True)


def _ifreq(name: str, value: int = 0) -> bytes:
    return struct.pack("16si20x", name.encode(), value)


def _ioctl_ifindex(sock: socket.socket, name: str) -> int:
    res = fcntl.ioctl(sock.fileno(), SIOCGIFINDEX, _ifreq(name))
    return int(struct.unpack_from("i", res, 16)[0])


def _ioctl_hatype(sock: socket.socket, name: str) -> int:
    res = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, _ifreq(name))
    return int(struct.unpack_from("H", res, 16)[0])


@dataclass
class _Opened:
    sock: socket.socket
    ifindex: int
    linktype: int
    cooked: int
    lo: int
    interfaces: dict[int, str] = field(default_factory=dict)


SIOCGIFFLAGS = 0x8913


def list_interfaces(netns: str | None = None) -> list[tuple[int, str, int]]:
    """(ifindex, name, IFF_* flags) of every interface of the namespace, by index (what
    ``tcpdump -D`` lists); needs no privilege."""
    with entered(netns):
        names = socket.if_nameindex()
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out = []
    try:
        for index, name in sorted(names):
            try:
                res = fcntl.ioctl(probe.fileno(), SIOCGIFFLAGS, _ifreq(name))
                flags = struct.unpack_from("H", res, 16)[0]
            except OSError:
                flags = 0
            out.append((index, name, flags))
    finally:
        probe.close()
    return out


def _mem_available() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None when unreadable)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _open_socket(iface: str) -> _Opened:
    """Create the (not yet receiving) socket and learn the interface; in the target netns."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except OSError as exc:
        raise explain(exc, "open AF_PACKET socket") from None
    try:
        interfaces = dict(socket.if_nameindex())
        try:
            lo = _ioctl_ifindex(sock, "lo")
        except OSError:
            lo = -1
        if iface == ANY:
            ifindex, linktype, cooked = 0, int(LinkType.LINUX_SLL2), _bpf.SLL2_HDR_LEN
        else:
            if not iface or len(iface.encode()) >= 16 or "/" in iface:
                ifindex = -1
            else:
                try:
                    ifindex = _ioctl_ifindex(sock, iface)
                except OSError as exc:
                    if exc.errno != errno.ENODEV:
                        raise explain(exc, f"look up interface {iface}") from None
                    ifindex = -1
            if ifindex < 0:
                names = ", ".join(n for _, n in sorted(interfaces.items()))
                raise RawlabError(f"no interface named {iface!r} here; interfaces: {names}, any; "
                                  "fix: pick one of them (-i IFACE), or see `ip link`",
                                  Exit.USAGE)
            linktype, cooked = linktype_for_arphrd(_ioctl_hatype(sock, iface))
        if cooked:
            sock.close()
            try:
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
            except OSError as exc:
                raise explain(exc, "open AF_PACKET socket") from None
    except BaseException:
        sock.close()
        raise
    return _Opened(sock, ifindex, linktype, cooked, lo, interfaces)


def open_ring(iface: str = ANY, *, bpf: str | None = None, snaplen: int = _bpf.MAXIMUM_SNAPLEN,
                 promisc: bool = False, netns: str | None = None,
                 config: RingConfig | None = None, direction: str = "inout",
                 fanout: Fanout | None = None) -> PacketRing:
    """Open a live capture on ``iface`` (a name, or ``"any"``) and start receiving.

    ``bpf``: a tcpdump filter expression, compiled for the capture's link type
    and attached before the socket is bound. ``snaplen``: bytes kept per packet
    (applied in the kernel). ``promisc``: PACKET_MR_PROMISC on the interface (not
    on ``any``), dropped when the socket closes. ``netns``: the name of a network
    namespace (``ip netns``) to capture in. ``direction``: "inout", "in" or "out"
    (tcpdump -Q). ``fanout``: join a PACKET_FANOUT group after binding.

    Raises RawlabError: unknown interface (USAGE, lists the interfaces), bad
    filter (USAGE, libpcap's message), no CAP_NET_RAW (PRIVILEGE), a ring the
    kernel will not allocate (FAILED, with the size tried).
    """
    cfg = config or RingConfig()
    _check_request(iface, snaplen, direction, cfg, promisc)
    with entered(netns):
        opened, program = _socket_and_filter(iface, bpf, snaplen)
    sock = opened.sock
    ring: PacketRing | None = None
    what = iface if iface != ANY else "any"
    try:
        _ask_ring(sock, cfg)
        ring = PacketRing(sock, iface=what, ifindex=opened.ifindex, linktype=opened.linktype,
                          cooked_hdrlen=opened.cooked, snaplen=snaplen, config=cfg,
                          lo_ifindex=opened.lo, interfaces=opened.interfaces, netns=netns,
                          program=program, direction=direction)
        ring._map()
        if program is not None:
            _bpf.attach(sock, program)
        # Only now does the socket start receiving: everything it sees passed the filter.
        _bind(sock, opened.ifindex, what)
        if promisc:
            mreq = struct.pack("=iHH8s", opened.ifindex, PACKET_MR_PROMISC, 0, b"")
            try:
                sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            except OSError as exc:
                raise explain(exc, f"set promisc mode on {what}") from None
        if fanout is not None:
            try:
                sock.setsockopt(SOL_PACKET, PACKET_FANOUT, fanout.sockopt())
            except OSError as exc:
                raise explain(exc, f"join fanout group {fanout.group}") from None
    except BaseException:
        if ring is not None:
            ring.close()
        else:
            sock.close()
        raise
    return ring


def open_watch(iface: str, bpf: str, *, netns: str | None = None,
               snaplen: int = 256) -> tuple[socket.socket, int]:
    """A packet socket without a ring, filtered by `bpf` and bound to `iface` in `netns`:
    the kernel wakes its reader for each packet that passes (no block to fill first), for
    a thread that must act while the packet's sender still lives. (socket, link type of
    what it reads: a cooked socket's packets start at the network header, LinkType.RAW.)
    Errors as :func:`open_ring`'s."""
    with entered(netns):
        opened, program = _socket_and_filter(iface, bpf, snaplen)
    sock = opened.sock
    try:
        if program is not None:
            _bpf.attach(sock, program)
        _bind(sock, opened.ifindex, iface if iface != ANY else "any")
    except BaseException:
        sock.close()
        raise
    return sock, int(LinkType.RAW) if opened.cooked else opened.linktype


def _check_request(iface: str, snaplen: int, direction: str, cfg: RingConfig,
                   promisc: bool) -> None:
    """Refuse what cannot work before anything is opened (USAGE, with the fix)."""
    page = mmap.PAGESIZE
    if snaplen < 1:
        raise RawlabError(f"snaplen must be ≥ 1 (got {snaplen})", Exit.USAGE)
    if direction not in ("inout", "in", "out"):
        raise RawlabError(f"direction must be in, out or inout (got {direction!r})", Exit.USAGE)
    if cfg.block_size < page or cfg.block_size & (cfg.block_size - 1):
        raise RawlabError(f"block size must be a power of two ≥ {page} (got {cfg.block_size})",
                          Exit.USAGE)
    if cfg.block_nr < 1:
        raise RawlabError(f"ring of {cfg.ring_mb} MiB holds no {cfg.block_size}-byte block; "
                          "fix: raise --ring-mb", Exit.USAGE)
    avail = _mem_available()
    if avail is not None and cfg.ring_mb * MiB > avail:
        # Asked for more than the machine has: the kernel would fall back from
        # high-order pages to vmalloc to reclaim and could wake the OOM killer.
        raise RawlabError(f"a {cfg.ring_mb} MiB capture ring is more than the memory available "
                          f"({avail // MiB} MiB); fix: use a smaller --ring-mb", Exit.USAGE)
    if promisc and iface == ANY:
        raise RawlabError("promiscuous mode is not supported on the 'any' device; "
                          "fix: capture on one interface (-i IFACE)", Exit.USAGE)


def _socket_and_filter(iface: str, bpf: str | None,
                       snaplen: int) -> tuple[_Opened, _bpf.BpfProgram | None]:
    """In the target namespace: the socket, the interface, and the program the kernel will
    run (for Ethernet compiled on a libpcap live handle, the way tcpdump -i does)."""
    opened = _open_socket(iface)
    try:
        kernel_snap = max(snaplen - opened.cooked, 1)
        if bpf is not None and bpf.strip():
            live = iface if opened.linktype == LinkType.ETHERNET and iface != ANY else None
            compiled = _bpf.compile_filter(bpf, opened.linktype, snaplen, live_iface=live)
            return opened, _bpf.for_kernel(compiled, cooked_hdrlen=opened.cooked,
                                           snaplen=kernel_snap)
        if snaplen < _bpf.MAXIMUM_SNAPLEN:
            return opened, _bpf.accept_all(kernel_snap)
        return opened, None
    except BaseException:
        opened.sock.close()
        raise


def _ask_ring(sock: socket.socket, cfg: RingConfig) -> None:
    """PACKET_VERSION = TPACKET_V3, then PACKET_RX_RING with the configured geometry."""
    try:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
    except OSError as exc:
        raise explain(exc, "select TPACKET_V3 (PACKET_VERSION)") from None
    frame_size = 2048  # irrelevant to V3 (frames are packed); must divide the block
    fpb = cfg.block_size // frame_size
    req = struct.pack("=7I", cfg.block_size, cfg.block_nr, frame_size, fpb * cfg.block_nr,
                      cfg.block_timeout_ms, 0, 0)
    try:
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
    except OSError as exc:
        raise _ring_error(exc, cfg, "PACKET_RX_RING") from None


def _bind(sock: socket.socket, ifindex: int, what: str) -> None:
    """bind() with ETH_P_ALL: the moment delivery starts."""
    addr = struct.pack("=HHiHBB8s", socket.AF_PACKET, socket.htons(ETH_P_ALL), ifindex, 0, 0, 0,
                       b"")
    if _libc.bind(sock.fileno(), addr, len(addr)) != 0:
        err = ctypes.get_errno()
        raise explain(OSError(err, os.strerror(err)), f"bind AF_PACKET socket to {what}")
