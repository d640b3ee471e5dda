"""The open capture: an AF_PACKET socket with its mmap'd TPACKET_V3 ring, read block by
block (zero-copy views, or Records owning a copy), its counters, and how it stops.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rawlab.errors import Exit, RawlabError, explain
from rawlab.records import PACKET_OUTGOING, Interface, LinkType, Record
from rawlab.sockets import bpf as _bpf
from rawlab.sockets.packet.header import (
    _BLOCK,
    _CSUM,
    _DIRECTION,
    _FRAME,
    _FRAME_END,
    _SLL,
    _SLL2,
    _STATS,
    _U32,
    _VLAN_TAG,
    PACKET_STATISTICS,
    SIOCGIFNAME,
    SOL_PACKET,
    TP_STATUS_KERNEL,
    TP_STATUS_LOSING,
    TP_STATUS_USER,
    TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID,
    PacketInfo,
    _new_info,
    _set_cap,
    _set_f,
    _set_wire,
)
from rawlab.sockets.packet.options import RingConfig
from rawlab.sockets.stop import stop_on_signals


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

    @property
    def pending(self) -> int:
        """Packets the filter passed that were neither captured, dropped nor skipped: still
        in the ring when the capture stopped (they arrived after the stop's drain)."""
        return max(self.received - self.dropped - self.captured - self.skipped, 0)


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
        self._drain_until: float | None = None  # a stop waits for the open block until then
        self._reading = False
        self._resume: tuple[int, int, int] | None = None
        self._recv = self._drop = self._freeze = 0
        self._captured = self._skipped = self._losing = 0
        self._numbers: dict[int, int] = {}  # `any`: ifindex -> interface number
        self._idbs: list[Interface] = []
        self._plain: dict[int, Interface] = {}  # interface(n) on one interface

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

    def stopped_by_signals(self) -> contextlib.AbstractContextManager[None]:
        """Within the block, SIGINT, SIGTERM and SIGHUP end the reading cleanly
        (:meth:`stop`), so a writer can finish its file; see rawlab.sockets.stop."""
        return stop_on_signals(self.stop)

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

    def interface(self, n: int) -> Interface:
        """Interface `n` of the records (their pcapng IDB): the interface captured on, or,
        on ``any``, each real interface in the order its first packet came (named from its
        ifindex), so that lines say ``lo In`` and a file keeps one IDB per interface."""
        if not self.ifindex and n < len(self._idbs):
            return self._idbs[n]
        got = self._plain.get(n)  # asked for every packet: made once (frozen)
        if got is None:
            got = self._plain[n] = Interface(n, self.linktype, self.snaplen, name=self.iface)
        return got

    def number(self, ifindex: int) -> int:
        """On ``any``: the interface number of `ifindex` (each real interface its own, in
        the order its first packet came; see :meth:`interface`)."""
        got = self._numbers.get(ifindex)
        return self._number(ifindex) if got is None else got

    def _number(self, ifindex: int) -> int:
        n = self._numbers[ifindex] = len(self._idbs)
        name = self.ifname(ifindex) or f"ifindex {ifindex}"
        self._idbs.append(Interface(n, self.linktype, self.snaplen, name=name))
        return n

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
        """Offset of the next user-owned block, or None (stopped / time is up).

        A stop (or the end of ``duration``) does not lose the packets of the block the
        kernel is filling: it hands a partly filled block over when the block timeout
        expires, so the read goes on until then (the drain), taking every block handed
        over meanwhile. Packets that arrive after that are counted (``pending``)."""
        mm = self._mm
        if mm is None:
            raise RawlabError("read from a closed capture", Exit.USAGE)
        base = self._cur * self._block_size
        idle_end = None if idle is None else time.monotonic() + idle
        while True:
            if _U32.unpack_from(mm, base + 8)[0] & TP_STATUS_USER:
                return base
            now = time.monotonic()
            if self._stopped or (deadline is not None and now >= deadline):
                if self._drain_until is None:
                    self._drain_until = now + self.config.block_timeout_ms / 1000 + 0.05
                deadline = self._drain_until
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

    def _next_block(self, deadline: float | None,
                    idle: float | None) -> tuple[int, int, int] | None:
        """(block offset, frames in it, offset of the first unread frame) of the block to
        read now: the one a stopped read left, else the next the kernel hands over."""
        if self._resume is not None:
            got, self._resume = self._resume, None
            return got
        base = self._wait_block(deadline, idle)
        if base is None:
            return None
        status, num, off = _BLOCK.unpack_from(self._mm, base + 8)  # type: ignore[arg-type]
        if status & TP_STATUS_LOSING:
            self._losing += 1
        return base, num, base + off

    @property
    def keeps(self) -> tuple[int, bool, bool]:
        """What the walk keeps by direction: (loopback's ifindex, whose outgoing frames
        are its incoming ones again; inbound frames; outbound frames)."""
        return (self._lo, self.direction in ("in", "inout"),
                self.direction in ("out", "inout"))

    @property
    def memory(self) -> mmap.mmap:
        """The mapped ring, which :meth:`frames`' offsets point into."""
        if self._mm is None:
            raise RawlabError("read from a closed capture", Exit.USAGE)
        return self._mm

    def frames(self, count: int | None = None, duration: float | None = None,
               idle: float | None = None, block_done: Callable[[], None] | None = None,
               ) -> Iterator[tuple[int, int, int, tuple[int | bytes, ...]]]:
        """The walk under :meth:`zero_copy` and :meth:`records`: yields (start, caplen,
        wirelen, _FRAME fields) of each frame kept, for readers that take the bytes
        from :attr:`memory` themselves (``capture -w``: rawlab.pipeline.write_ring).

        ``start`` is the offset of the record's first byte in the ring (the cooked
        header, when there is one, has been written in front of the packet); the
        bytes stay valid until the walk moves past their block. A stripped VLAN tag is
        not in them (:func:`vlan_tagged`). ``block_done`` is called after each block is
        handed back to the kernel (e.g. to flush a file writer: then the file holds
        every whole block).
        """
        deadline = self._begin_walk(duration)
        unpack = _FRAME.unpack_from
        mm = self._mm
        lo, want_in, want_out = self.keeps
        hl = self.cooked_hdrlen
        snaplen = self.snaplen
        sll2 = hl == _bpf.SLL2_HDR_LEN
        left = count
        kept = skipped = 0
        base: int | None = None
        num = i = off = 0
        try:
            while left is None or left > 0:
                got = self._next_block(deadline, idle)
                if got is None:
                    return
                base, num, off = got
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
            self._end_walk(kept, skipped, base, num - i, off)

    def _begin_walk(self, duration: float | None) -> float | None:
        """Start a walk (one at a time); its deadline."""
        if self._reading:
            raise RawlabError("this capture is already being read", Exit.USAGE)
        self._reading = True
        if not self._stopped:
            self._drain_until = None
        return None if duration is None else time.monotonic() + duration

    def blocks(self, duration: float | None = None,
               block_done: Callable[[], None] | None = None) -> Iterator[list[int]]:
        """The walk of :meth:`frames` a block at a time, for a compiled reader of the
        frames (``capture -w``: rawlab._kernels.ring_epbs): yields a cursor per block,
        [offset of the next frame, frames left in the block, frames kept, frames
        skipped], which the reader advances (keeping the frames :meth:`frames` keeps:
        the direction, the snap length, and writing the cooked header in front of
        each frame). The same cursor comes again until the block is read to its end,
        then the block is handed back; a walk closed with frames left resumes there."""
        deadline = self._begin_walk(duration)
        cur = [0, 0, 0, 0]
        base: int | None = None
        try:
            while True:
                got = self._next_block(deadline, None)
                if got is None:
                    return
                base, num, off = got
                cur[:] = [off, num, 0, 0]
                while True:  # (the same block again until the reader has read it all)
                    yield cur
                    self._captured += cur[2]
                    self._skipped += cur[3]
                    cur[2] = cur[3] = 0
                    if cur[1] <= 0:
                        break
                self._release(base)
                base = None
                if block_done is not None:
                    block_done()
        finally:
            self._end_walk(cur[2], cur[3], base, cur[1], cur[0])

    def _end_walk(self, kept: int, skipped: int, base: int | None, unread: int,
                  off: int) -> None:
        """Count what the walk handed out, and keep the place inside a block it left."""
        self._captured += kept
        self._skipped += skipped
        if base is not None:
            if unread > 0:  # stopped inside a block: the next read resumes here
                self._resume = (base, unread, off)
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
        for start, cap, wire, f in self.frames(count, duration, idle):
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
        per_interface = not self.ifindex  # `any`: each real interface its own number
        number = self._numbers.get
        for start, cap, wire, f in self.frames(count, duration, idle, block_done):
            if per_interface:
                got = number(f[12])  # type: ignore[call-overload]
                interface = self._number(f[12]) if got is None else got  # type: ignore[arg-type]
            status = f[5]
            data = mm[start:start + cap]
            vid = None
            on_wire = wire
            if status & TP_STATUS_VLAN_VALID:
                vid = f[9] & 0x0FFF  # type: ignore[operator]
                if eth:
                    data, on_wire = vlan_tagged(data, wire, f)
            yield Record(f[1] * 1_000_000_000 + f[2], on_wire, lt, data, interface,
                         direction[f[14] & 7], f[12], vid, csum[status & 136])


def vlan_tagged(data: bytes, wire: int, f: tuple[int | bytes, ...]) -> tuple[bytes, int]:
    """An Ethernet frame's bytes and wire length with the VLAN tag the kernel stripped on
    receive put back after the MAC addresses (as libpcap does), for a frame whose status
    says TP_STATUS_VLAN_VALID; ``f`` its _FRAME fields."""
    if len(data) < 12:
        return data, wire
    tpid = f[10] if f[5] & TP_STATUS_VLAN_TPID_VALID else 0x8100  # type: ignore[operator]
    return data[:12] + _VLAN_TAG.pack(tpid, f[9]) + data[12:], wire + 4


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
