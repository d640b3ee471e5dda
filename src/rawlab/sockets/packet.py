"""Live capture on AF_PACKET with a TPACKET_V3 ring (the engine under `rawlab capture`).

    from rawlab.sockets.packet import open_ring, RingConfig

    with open_ring("veth0", bpf="udp", netns="rl-a-...", promisc=True) as cap:
        for info, data in cap.zero_copy(count=10):   # data valid until the next block
            ...                                      # info: PacketInfo (a CaptureInfo)
        for rec in cap.records(duration=1.0):        # rawlab.records.Record (a copy)
            ...
        print(cap.stats())     # CaptureStats: received / captured / dropped, as tcpdump says

Open sequence (so that no unfiltered packet ever reaches the ring): the socket
is created with protocol 0, which receives nothing; then PACKET_VERSION =
TPACKET_V3, PACKET_RX_RING, mmap, SO_ATTACH_FILTER; only then bind() with
ETH_P_ALL starts delivery. The filter is fixed for the capture's lifetime.

Link types, as libpcap maps ``ARPHRD_*`` (``map_arphrd_to_dlt``): Ethernet and
loopback → ETHERNET, NONE/RAWIP/tunnels → RAW, NETLINK (nlmon) → NETLINK with a
16-byte cooked header, VSOCKMON → VSOCK; anything else is captured "cooked"
(SOCK_DGRAM, LINUX_SLL). ``any`` is cooked with 20-byte LINUX_SLL2 headers built
from each frame's ``sockaddr_ll``. The cooked header is written into the ring
in front of the packet (there are ≥ 28 free bytes there), so cooked captures
are zero-copy too.

Loopback: every packet on ``lo`` passes the taps twice (outgoing, then
incoming). Like libpcap's ``linux_check_direction``, the outgoing copy on the
namespace's ``lo`` is skipped (on ``lo`` and on ``any``); it still counts in
``received`` because the kernel counted it, exactly as tcpdump reports it.

Memory ordering: a block is read only after its ``block_status`` says
TP_STATUS_USER, and handed back by writing TP_STATUS_KERNEL after its last
frame was read. On x86 (TSO) loads are not reordered with older loads, so no
barrier is needed; CPython cannot issue ``smp_rmb`` itself, which a
weakly-ordered CPU (arm64) would want between the two.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import select
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from rawlab.errors import Exit, RawlabError, explain
from rawlab.records import CaptureInfo, CsumHint, Direction, LinkType, Record
from rawlab.sockets import bpf as _bpf
from rawlab.sockets.netns import entered

__all__ = [
    "ANY",
    "CaptureStats",
    "Fanout",
    "PacketInfo",
    "PacketRing",
    "RingConfig",
    "linktype_for_arphrd",
    "open_ring",
]

ANY = "any"

# <linux/if_packet.h>
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_FANOUT = 18
PACKET_MR_PROMISC = 1
TPACKET_V3 = 2
ETH_P_ALL = 0x0003

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_LOSING = 4
TP_STATUS_CSUMNOTREADY = 8
TP_STATUS_VLAN_VALID = 16
TP_STATUS_BLK_TMO = 32
TP_STATUS_VLAN_TPID_VALID = 64
TP_STATUS_CSUM_VALID = 128

PACKET_HOST = 0
PACKET_BROADCAST = 1
PACKET_MULTICAST = 2
PACKET_OTHERHOST = 3
PACKET_OUTGOING = 4

FANOUT_MODES = {"hash": 0, "lb": 1, "cpu": 2, "rollover": 3, "rnd": 4, "qm": 5}
PACKET_FANOUT_FLAG_ROLLOVER = 0x1000
PACKET_FANOUT_FLAG_DEFRAG = 0x8000

# <linux/if_arp.h>
ARPHRD_ETHER = 1
ARPHRD_PPP = 512
ARPHRD_RAWIP = 519
ARPHRD_TUNNEL = 768
ARPHRD_TUNNEL6 = 769
ARPHRD_LOOPBACK = 772
ARPHRD_SIT = 776
ARPHRD_IEEE80211_RADIOTAP = 803
ARPHRD_NETLINK = 824
ARPHRD_VSOCKMON = 826
ARPHRD_NONE = 0xFFFE

LINKTYPE_IEEE802_11_RADIOTAP = 127

SIOCGIFNAME = 0x8910
SIOCGIFHWADDR = 0x8927
SIOCGIFINDEX = 0x8933

# tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1 at +8:
# block_status, num_pkts, offset_to_first_pkt, blk_len, seq_num (u64) ...
_BLOCK = struct.Struct("<III")  # at base + 8
# tpacket3_hdr (48 bytes) + sockaddr_ll at TPACKET_ALIGN(48) = 48 (20 bytes).
# sll_protocol is big-endian in memory: read here little-endian and swapped.
_FRAME = struct.Struct("<IIIIIIHHIIH2x8x2xHiHBB8s")
# fields: 0 next_offset, 1 sec, 2 nsec, 3 snaplen, 4 len, 5 status, 6 mac, 7 net,
# 8 rxhash, 9 vlan_tci, 10 vlan_tpid, 11 sll_protocol (swapped), 12 ifindex,
# 13 hatype, 14 pkttype, 15 halen, 16 addr
_SLL2 = struct.Struct(">HHiHBB8s")
_SLL = struct.Struct(">HHH8sH")
_U32 = struct.Struct("<I")
_STATS = struct.Struct("=III")
_VLAN_TAG = struct.Struct("!HH")  # TPID, TCI as they sit in an 802.1Q header
_FRAME_END = 68  # TPACKET3_HDRLEN: where the free space before tp_mac begins

_DIRECTION = (Direction.INBOUND,) * 4 + (Direction.OUTBOUND,) + (Direction.INBOUND,) * 3
_CSUM = {0: CsumHint.NONE, 8: CsumHint.NOT_READY, 128: CsumHint.VALID,
         136: CsumHint.NOT_READY | CsumHint.VALID}

MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class RingConfig:
    """Ring geometry. ``ring_mb`` MiB of ``block_size``-byte blocks, retired after
    ``block_timeout_ms`` when not full (latency at low rates).

    A 60-byte frame takes 144 bytes of ring (48 tpacket3_hdr + 20 sockaddr_ll +
    alignment + data), so 128 MiB hold ~930,000 of them even if the reader never
    ran; with the reader draining concurrently a 1M burst fits with room to spare.
    """

    ring_mb: int = 128
    block_size: int = 1 * MiB
    block_timeout_ms: int = 100

    @property
    def block_nr(self) -> int:
        return (self.ring_mb * MiB) // self.block_size


@dataclass(frozen=True, slots=True)
class Fanout:
    """PACKET_FANOUT: sockets (in any process) joining ``group`` share the traffic.

    ``mode``: hash (per flow), lb (round robin), cpu, rollover, rnd, qm.
    """

    group: int
    mode: Literal["hash", "lb", "cpu", "rollover", "rnd", "qm"] = "hash"
    defrag: bool = False
    rollover: bool = False

    def sockopt(self) -> int:
        flags = FANOUT_MODES[self.mode]
        if self.defrag:
            flags |= PACKET_FANOUT_FLAG_DEFRAG
        if self.rollover:
            flags |= PACKET_FANOUT_FLAG_ROLLOVER
        return (self.group & 0xFFFF) | (flags << 16)


class PacketInfo(CaptureInfo):
    """A :class:`CaptureInfo` read lazily from the ring's frame header, plus what the
    ring said verbatim.

    Built with three slot stores instead of a 13-field frozen-dataclass
    ``__init__`` (which cost 0.75 µs a packet, more than the whole ring walk):
    every field is a property over the unpacked ``tpacket3_hdr``+``sockaddr_ll``
    tuple. It behaves as a CaptureInfo (fields, ``==``, ``hash``, ``repr``);
    :meth:`capture_info` returns a plain one (``dataclasses.replace`` does not
    work on this class).

    Extra fields: ``pkttype`` (``sll_pkttype``: PACKET_HOST 0, BROADCAST 1,
    MULTICAST 2, OTHERHOST 3, OUTGOING 4; ``direction`` is its pcapng in/out
    form), ``hatype`` (ARPHRD), ``protocol`` (EtherType, host order), ``status``
    (raw ``tp_status``), ``vlan_tci``/``vlan_tpid`` (the whole stripped tag;
    ``vlan`` is its VID), ``rxhash``.
    """

    __slots__ = ("_cap", "_f", "_wire")

    _f: tuple[int | bytes, ...]
    _cap: int
    _wire: int

    @property  # type: ignore[override]
    def ts_ns(self) -> int:
        f = self._f
        return f[1] * 1_000_000_000 + f[2]  # type: ignore[operator,no-any-return]

    @property  # type: ignore[override]
    def caplen(self) -> int:
        return self._cap

    @property  # type: ignore[override]
    def wirelen(self) -> int:
        return self._wire

    @property  # type: ignore[override]
    def ifindex(self) -> int:
        return self._f[12]  # type: ignore[return-value]

    @property  # type: ignore[override]
    def direction(self) -> int:
        return _DIRECTION[self._f[14] & 7]  # type: ignore[operator]

    @property  # type: ignore[override]
    def vlan(self) -> int | None:
        f = self._f
        return f[9] & 0x0FFF if f[5] & TP_STATUS_VLAN_VALID else None  # type: ignore[operator]

    @property  # type: ignore[override]
    def csum_status(self) -> CsumHint:
        return _CSUM[self._f[5] & 136]  # type: ignore[operator]

    @property
    def pkttype(self) -> int:
        return self._f[14]  # type: ignore[return-value]

    @property
    def hatype(self) -> int:
        return self._f[13]  # type: ignore[return-value]

    @property
    def protocol(self) -> int:
        p: int = self._f[11]  # type: ignore[assignment]
        return ((p & 0xFF) << 8) | (p >> 8)

    @property
    def status(self) -> int:
        return self._f[5]  # type: ignore[return-value]

    @property
    def vlan_tci(self) -> int | None:
        f = self._f
        return f[9] if f[5] & TP_STATUS_VLAN_VALID else None  # type: ignore[operator,return-value]

    @property
    def vlan_tpid(self) -> int | None:
        f = self._f
        st: int = f[5]  # type: ignore[assignment]
        if not st & TP_STATUS_VLAN_VALID:
            return None
        return f[10] if st & TP_STATUS_VLAN_TPID_VALID else 0x8100  # type: ignore[return-value]

    @property
    def rxhash(self) -> int:
        return self._f[8]  # type: ignore[return-value]

    def capture_info(self) -> CaptureInfo:
        """A plain, independent CaptureInfo with the same values."""
        return CaptureInfo(self.ts_ns, self.caplen, self.wirelen, self.ifindex, self.direction,
                           self.vlan, self.csum_status)

    def __repr__(self) -> str:
        return (f"PacketInfo(ts_ns={self.ts_ns}, caplen={self.caplen}, wirelen={self.wirelen}, "
                f"ifindex={self.ifindex}, direction={self.direction!r}, vlan={self.vlan}, "
                f"csum_status={self.csum_status!r}, pkttype={self.pkttype}, "
                f"protocol={self.protocol:#06x}, status={self.status:#x})")


_new_info = object.__new__
_set_f = PacketInfo._f.__set__  # type: ignore[attr-defined]
_set_cap = PacketInfo._cap.__set__  # type: ignore[attr-defined]
_set_wire = PacketInfo._wire.__set__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """The numbers tcpdump prints at exit, and what rawlab adds.

    ``received``: packets that passed the filter ("received by filter": the
    sum of PACKET_STATISTICS ``tp_packets``, which includes the drops);
    ``dropped``: no room in the ring ("dropped by kernel", ``tp_drops``);
    ``captured``: handed to the reader. ``received - dropped - captured`` are
    still in the ring or were skipped (``skipped``: lo's outgoing copies and the
    other direction when one was chosen). ``freeze_q``: packets dropped while
    the queue was frozen (``tp_freeze_q_cnt``); ``losing_blocks``: blocks the
    kernel closed with TP_STATUS_LOSING (drops happened before they were filled).
    """

    received: int
    captured: int
    dropped: int
    freeze_q: int = 0
    losing_blocks: int = 0
    skipped: int = 0

    def summary(self) -> str:
        """tcpdump's three lines."""
        return (f"{self.captured} packets captured\n{self.received} packets received by filter\n"
                f"{self.dropped} packets dropped by kernel")


def linktype_for_arphrd(hatype: int) -> tuple[int, int]:
    """(LINKTYPE, cooked header length) for a device's ARPHRD, as libpcap maps it.

    cooked header length 0 means SOCK_RAW and no header; 16 a LINUX_SLL-style
    header (LINUX_SLL, NETLINK), 20 LINUX_SLL2 (only for ``any``).
    """
    if hatype in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
        return int(LinkType.ETHERNET), 0
    if hatype in (ARPHRD_NONE, ARPHRD_RAWIP, ARPHRD_TUNNEL, ARPHRD_TUNNEL6, ARPHRD_SIT):
        return int(LinkType.RAW), 0
    if hatype == ARPHRD_NETLINK:
        return int(LinkType.NETLINK), _bpf.SLL_HDR_LEN
    if hatype == ARPHRD_VSOCKMON:
        return int(LinkType.VSOCK), 0
    if hatype == ARPHRD_IEEE80211_RADIOTAP:
        return LINKTYPE_IEEE802_11_RADIOTAP, 0
    return int(LinkType.LINUX_SLL), _bpf.SLL_HDR_LEN  # PPP, CAN, unknown: cooked


_libc = ctypes.CDLL(None, use_errno=True)


def _ifreq(name: str, value: int = 0) -> bytes:
    return struct.pack("16si20x", name.encode(), value)


def _ioctl_ifindex(sock: socket.socket, name: str) -> int:
    res = fcntl.ioctl(sock.fileno(), SIOCGIFINDEX, _ifreq(name))
    return int(struct.unpack_from("i", res, 16)[0])


def _ioctl_hatype(sock: socket.socket, name: str) -> int:
    res = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, _ifreq(name))
    return int(struct.unpack_from("H", res, 16)[0])


class PacketRing:
    """An open capture: AF_PACKET socket + mmap'd TPACKET_V3 ring. Use :func:`open_ring`.

    Attributes: ``iface`` (name or "any"), ``ifindex`` (0 for any), ``linktype``,
    ``snaplen``, ``cooked_hdrlen`` (0, 16 or 20), ``config`` (RingConfig),
    ``filter`` (the BpfProgram the kernel runs, or None), ``netns``.
    Read with :meth:`zero_copy` or :meth:`records` (not both at once), get the
    counters with :meth:`stats`, end with :meth:`close` (or a ``with`` block).
    """

    def __init__(self, sock: socket.socket, *, iface: str, ifindex: int, linktype: int,
                 cooked_hdrlen: int, snaplen: int, config: RingConfig, lo_ifindex: int,
                 interfaces: dict[int, str], netns: str | None,
                 program: _bpf.BpfProgram | None, direction: str) -> None:
        self.sock = sock
        self.iface = iface
        self.ifindex = ifindex
        self.linktype = linktype
        self.cooked_hdrlen = cooked_hdrlen
        self.snaplen = snaplen
        self.config = config
        self.netns = netns
        self.filter = program
        self.interfaces = interfaces
        self.direction = direction
        self._lo = lo_ifindex
        self._block_size = config.block_size
        self._block_nr = config.block_nr
        self._cur = 0
        self._mm: mmap.mmap | None = None
        self._mv: memoryview | None = None
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN | select.POLLERR)
        self._poll.register(self._wake, select.POLLIN)
        self._stopped = False
        self._reading = False
        self._resume: tuple[int, int, int] | None = None
        self._recv = self._drop = self._freeze = 0
        self._captured = self._skipped = self._losing = 0

    # -- lifecycle -------------------------------------------------------------

    def _map(self) -> None:
        size = self._block_size * self._block_nr
        try:
            self._mm = mmap.mmap(self.sock.fileno(), size, mmap.MAP_SHARED,
                                 mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as exc:
            raise _ring_error(exc, self.config, "mmap") from None
        self._mv = memoryview(self._mm)

    def fileno(self) -> int:
        """The socket's descriptor (readable when a block is ready)."""
        return self.sock.fileno()

    def stop(self) -> None:
        """Make the readers return at the next wake-up (safe from signal handlers/threads)."""
        self._stopped = True
        try:
            os.eventfd_write(self._wake, 1)
        except OSError:
            pass

    @contextlib.contextmanager
    def stopped_by_signals(self) -> Iterator[None]:
        """Within the block, SIGINT and SIGTERM end the reading cleanly (:meth:`stop`),
        so a writer can finish its file; the previous handlers come back after it."""
        old = {s: signal.signal(s, lambda signum, frame: self.stop())
               for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def close(self) -> None:
        """Release the ring and the socket (the promiscuous membership goes with it)."""
        if self._mm is None and self.sock.fileno() < 0:
            return
        if self._mv is not None:
            self._mv.release()
            self._mv = None
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:
                pass  # a caller still holds a zero-copy view: unmapped when it is freed
            self._mm = None
        self.sock.close()
        try:
            os.close(self._wake)
        except OSError:
            pass

    def __enter__(self) -> PacketRing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ifname(self, ifindex: int) -> str | None:
        """The name of an interface of the capture's namespace (cached; None if gone)."""
        name = self.interfaces.get(ifindex)
        if name is None and ifindex > 0:
            try:
                res = fcntl.ioctl(self.sock.fileno(), SIOCGIFNAME,
                                  struct.pack("16si20x", b"", ifindex))
            except OSError:
                return None
            name = res[:16].split(b"\0", 1)[0].decode()
            self.interfaces[ifindex] = name
        return name

    # -- statistics ------------------------------------------------------------

    def stats(self) -> CaptureStats:
        """Read PACKET_STATISTICS (it resets on every read: accumulated here)."""
        if self.sock.fileno() >= 0:
            raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size)
            packets, drops, freeze = _STATS.unpack(raw)
            self._recv += packets
            self._drop += drops
            self._freeze += freeze
        return CaptureStats(self._recv, self._captured, self._drop, self._freeze,
                            self._losing, self._skipped)

    def drops_to(self, note: Callable[[int], None]) -> Callable[[], None]:
        """A ``block_done`` hook that tells ``note(n)`` how many packets the kernel dropped
        since the last block (for analysers that mark capture loss, live)."""
        seen = [self.stats().dropped]

        def block_done() -> None:
            dropped = self.stats().dropped
            if dropped > seen[0]:
                note(dropped - seen[0])
                seen[0] = dropped

        return block_done

    # -- reading ---------------------------------------------------------------

    def _wait_block(self, deadline: float | None, idle: float | None) -> int | None:
        """Offset of the next user-owned block, or None (stopped / time is up)."""
        mm = self._mm
        if mm is None:
            raise RawlabError("read from a closed capture", Exit.USAGE)
        base = self._cur * self._block_size
        idle_end = None if idle is None else time.monotonic() + idle
        while True:
            if _U32.unpack_from(mm, base + 8)[0] & TP_STATUS_USER:
                return base
            if self._stopped:
                return None
            now = time.monotonic()
            ends = [t for t in (deadline, idle_end) if t is not None]
            if ends:
                left = min(ends) - now
                if left <= 0:
                    return None
                timeout_ms = max(1, int(left * 1000) + 1)
            else:
                timeout_ms = -1
            for fd, ev in self._poll.poll(timeout_ms):
                if fd == self._wake:
                    try:
                        os.eventfd_read(self._wake)
                    except OSError:
                        pass
                elif ev & select.POLLERR:
                    err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        what = "any" if not self.ifindex else self.iface
                        raise explain(OSError(err, os.strerror(err)),
                                      f"capture on {what}") from None

    def _release(self, base: int) -> None:
        if self._mm is not None:
            _U32.pack_into(self._mm, base + 8, TP_STATUS_KERNEL)
        self._cur = (self._cur + 1) % self._block_nr

    def _frames(self, count: int | None, duration: float | None, idle: float | None,
                block_done: Callable[[], None] | None = None,
                ) -> Iterator[tuple[int, int, int, tuple[int | bytes, ...]]]:
        """Core walk: yields (start, caplen, wirelen, _FRAME fields) of each frame kept.

        ``start`` is the offset of the record's first byte in the ring (the cooked
        header, when there is one, has been written in front of the packet).
        ``block_done`` is called after each block is handed back to the kernel
        (e.g. to flush a file writer: then the file holds every whole block).
        """
        if self._reading:
            raise RawlabError("this capture is already being read", Exit.USAGE)
        self._reading = True
        deadline = None if duration is None else time.monotonic() + duration
        unpack = _FRAME.unpack_from
        mm = self._mm
        lo = self._lo
        hl = self.cooked_hdrlen
        snaplen = self.snaplen
        want_in = self.direction in ("in", "inout")
        want_out = self.direction in ("out", "inout")
        sll2 = hl == _bpf.SLL2_HDR_LEN
        left = count
        kept = skipped = 0
        base: int | None = None
        num = i = off = 0
        try:
            while left is None or left > 0:
                if self._resume is not None:
                    base, num, off = self._resume
                    self._resume = None
                else:
                    base = self._wait_block(deadline, idle)
                    if base is None:
                        return
                    status, num, off = _BLOCK.unpack_from(mm, base + 8)
                    if status & TP_STATUS_LOSING:
                        self._losing += 1
                    off += base
                i = 0
                while i < num:
                    f = unpack(mm, off)
                    i += 1
                    here = off
                    off += f[0]  # state points at the next frame before anything is yielded
                    pkttype = f[14]
                    keep = (want_out and f[12] != lo) if pkttype == PACKET_OUTGOING else want_in
                    if not keep:
                        skipped += 1
                        continue
                    mac = f[6]
                    cap = f[3]
                    wire = f[4]
                    start = here + mac
                    if hl:
                        p = f[11]
                        proto = ((p & 0xFF) << 8) | (p >> 8)
                        if mac - _FRAME_END < hl:  # never with SOCK_DGRAM; be safe
                            raise RawlabError("cooked frame has no room for its header "
                                              f"(tp_mac {mac})", Exit.FAILED)
                        start -= hl
                        if sll2:
                            _SLL2.pack_into(mm, start, proto, 0, f[12], f[13], pkttype,
                                            f[15], f[16])
                        else:
                            _SLL.pack_into(mm, start, pkttype, f[13], f[15], f[16], proto)
                        cap += hl
                        wire += hl
                    if cap > snaplen:  # noqa: PLR1730 - hot loop, min() is a call
                        cap = snaplen
                    kept += 1
                    if left is not None:
                        left -= 1
                    yield start, cap, wire, f
                    if left == 0:
                        break
                self._captured += kept
                self._skipped += skipped
                kept = skipped = 0
                if i >= num:
                    self._release(base)
                    base = None
                    if block_done is not None:
                        block_done()
        finally:
            self._captured += kept
            self._skipped += skipped
            if base is not None:
                if i < num:  # stopped inside a block: the next read resumes here
                    self._resume = (base, num - i, off)
                else:
                    self._release(base)
            self._reading = False

    def zero_copy(self, *, count: int | None = None, duration: float | None = None,
                  idle: float | None = None) -> Iterator[tuple[PacketInfo, memoryview]]:
        """Yield ``(PacketInfo, memoryview)`` per packet, without copying.

        The view points into the ring and is valid only until the iterator moves
        past the packet's block (or is closed): copy what must be kept (``bytes(view)``).
        Stops after ``count`` packets, after ``duration`` seconds, after ``idle``
        seconds without a block, or when :meth:`stop` is called; else runs forever.
        """
        mv = self._mv
        if mv is None:
            raise RawlabError("read from a closed capture", Exit.USAGE)
        new, set_f, set_cap, set_wire = _new_info, _set_f, _set_cap, _set_wire
        for start, cap, wire, f in self._frames(count, duration, idle):
            info = new(PacketInfo)
            set_f(info, f)
            set_cap(info, cap)
            set_wire(info, wire)
            yield info, mv[start:start + cap]

    def records(self, *, count: int | None = None, duration: float | None = None,
                idle: float | None = None, interface: int = 0,
                block_done: Callable[[], None] | None = None) -> Iterator[Record]:
        """Like :meth:`zero_copy`, but each packet is a :class:`Record` owning a copy.

        ``interface`` is the Record's interface number (pcapng IDB index);
        ``block_done`` is called after each ring block is released.

        As libpcap does, a VLAN tag the kernel stripped on receive is put back
        into the copy of an Ethernet frame (after the MAC addresses), so files
        and decoders see the frame as it was on the wire; ``vlan`` still says it.
        """
        mm = self._mm
        if mm is None:
            raise RawlabError("read from a closed capture", Exit.USAGE)
        lt = self.linktype
        direction = _DIRECTION
        csum = _CSUM
        eth = lt == LinkType.ETHERNET
        for start, cap, wire, f in self._frames(count, duration, idle, block_done):
            status = f[5]
            data = mm[start:start + cap]
            vid = None
            on_wire = wire
            if status & TP_STATUS_VLAN_VALID:
                tci = f[9]
                vid = tci & 0x0FFF  # type: ignore[operator]
                if eth and cap >= 12:
                    tpid = f[10] if status & TP_STATUS_VLAN_TPID_VALID else 0x8100
                    data = data[:12] + _VLAN_TAG.pack(tpid, tci) + data[12:]
                    on_wire += 4
            yield Record(f[1] * 1_000_000_000 + f[2], on_wire, lt, data, interface,
                         direction[f[14] & 7], f[12], vid, csum[status & 136])

    def count_only(self, *, count: int | None = None, duration: float | None = None,
                   idle: float | None = None) -> int:
        """Walk the ring counting packets (no per-packet objects): the engine's ceiling."""
        n = 0
        for _ in self._frames(count, duration, idle):
            n += 1
        return n


@dataclass
class _Opened:
    sock: socket.socket
    ifindex: int
    linktype: int
    cooked: int
    lo: int
    interfaces: dict[int, str] = field(default_factory=dict)


def _ring_error(exc: OSError, cfg: RingConfig, step: str) -> RawlabError:
    size = f"{cfg.ring_mb} MiB ring ({cfg.block_nr} blocks of {cfg.block_size // 1024} KiB)"
    if exc.errno == errno.ENOMEM:
        return RawlabError(f"allocate a {size} failed ({step}): the kernel could not allocate "
                           "that much memory (ENOMEM); fix: use a smaller --ring-mb",
                           Exit.FAILED, errno_=exc.errno)
    if exc.errno == errno.EINVAL:
        return RawlabError(f"allocate a {size} failed ({step}): the kernel rejected that ring "
                           "geometry (EINVAL; the ring must be < 4 GiB, blocks a power-of-two "
                           "number of pages); fix: use a smaller --ring-mb", Exit.FAILED,
                           errno_=exc.errno)
    return explain(exc, f"set up {size} ({step})")


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

    def setup() -> tuple[_Opened, _bpf.BpfProgram | None]:
        # In the target namespace: the socket, the interface, and (for Ethernet)
        # a libpcap live handle to compile the filter the way tcpdump -i does.
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

    with entered(netns):
        opened, program = setup()
    sock = opened.sock
    ring: PacketRing | None = None
    try:
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
        what = iface if iface != ANY else "any"
        ring = PacketRing(sock, iface=what, ifindex=opened.ifindex, linktype=opened.linktype,
                          cooked_hdrlen=opened.cooked, snaplen=snaplen, config=cfg,
                          lo_ifindex=opened.lo, interfaces=opened.interfaces, netns=netns,
                          program=program, direction=direction)
        ring._map()
        if program is not None:
            _bpf.attach(sock, program)
        # Only now does the socket start receiving: everything it sees passed the filter.
        addr = struct.pack("=HHiHBB8s", socket.AF_PACKET, socket.htons(ETH_P_ALL),
                           opened.ifindex, 0, 0, 0, b"")
        if _libc.bind(sock.fileno(), addr, len(addr)) != 0:
            err = ctypes.get_errno()
            raise explain(OSError(err, os.strerror(err)), f"bind AF_PACKET socket to {what}")
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
