"""The netlink monitor's I/O: sockets joined to groups, drained by a thread, and their dumps.

    with MonitorSession({NETLINK_ROUTE: group_numbers(["route"]), NETLINK_NETFILTER: [1, 2, 3]},
                        at_receipt=PortOwners().at_receipt) as session, \
            stop_on_signals(session.stop):
        seed = session.seed("routes")          # the table before the first event (buffers)
        for item in session.drain(duration):   # Datagram | Overflow | Redump, in order
            ...                                # after an rtnetlink Overflow: what was queued,
                                               # then a Redump of every seeded kind

I/O only: the datagrams stay bytes; rawlab.decode.rtnl reads them and
rawlab.analysis.netlink keeps the tables and diffs a re-dump against them.
One socket per netlink family (rtnetlink, nfnetlink for conntrack and nftables,
generic netlink); a separate thread (:class:`Drain`) moves datagrams from all of
them into memory as fast as the kernel fills them, so a burst never waits on
the decoder, and looks up each datagram's sender as it arrives (``at_receipt``);
an ENOBUFS (the kernel dropped messages) becomes an :class:`Overflow` in place.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rawlab.sockets.netlink import SOL_NETLINK, DumpSocket, dump_buffers
from rawlab.sockets.netlink_wire import NETLINK_ROUTE

NETLINK_ADD_MEMBERSHIP = 1
NETLINK_PKTINFO = 3
NETLINK_LISTEN_ALL_NSID = 8
SO_RCVBUFFORCE = 33

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


@dataclass(frozen=True, slots=True)
class Datagram:
    """One datagram the drain read: when, its bytes, its ancillary data, the netlink
    family of its socket, and its sender(s) as looked up when it arrived."""

    ts_ns: int
    data: bytes
    anc: list[tuple[int, int, bytes]] = field(default_factory=list)
    protocol: int = NETLINK_ROUTE
    owner: Any = None  # rawlab.sockets.proc.PortOwners.at_receipt's answer, if asked


@dataclass(frozen=True, slots=True)
class Overflow:
    """A socket said ENOBUFS: the kernel dropped messages it could not queue."""

    ts_ns: int
    protocol: int = NETLINK_ROUTE


@dataclass(frozen=True, slots=True)
class Redump:
    """A fresh dump of a seeded kind after an overflow (the buffers, as dumped)."""

    kind: str  # as rawlab.sockets.netlink.dump_request names it: links, routes ...
    bufs: list[bytes]


def ancillary(anc: Iterable[tuple[int, int, bytes]]) -> tuple[int | None, int | None]:
    """(nsid, group) from a netlink recvmsg's control messages."""
    nsid = group = None
    for level, ctype, data in anc:
        if level != SOL_NETLINK or len(data) < 4:
            continue
        v = int.from_bytes(data[:4], sys.byteorder, signed=True)  # host order
        if ctype == NETLINK_LISTEN_ALL_NSID:
            nsid = v
        elif ctype == NETLINK_PKTINFO:
            group = v
    return nsid, group


def set_rcvbuf(sock: socket.socket, size: int) -> int:
    """SO_RCVBUFFORCE (root: past rmem_max), else SO_RCVBUF; returns what the kernel set."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


def open_monitor(groups: list[int], *, protocol: int = NETLINK_ROUTE, all_nsid: bool = False,
                 rcvbuf: int = 64 << 20) -> tuple[socket.socket, int]:
    """A netlink socket of ``protocol`` joined to ``groups``; returns it and its receive
    buffer size.

    ``all_nsid``: NETLINK_LISTEN_ALL_NSID, events of every namespace that has an
    nsid here, each with its nsid in the ancillary data.
    """
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
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
    """Reads monitor sockets in its own thread, as fast as the kernel fills them.

    Decoding happens elsewhere: this thread only moves datagrams from the
    sockets' buffers into :attr:`queue`, in batches (a list per wake-up), so a
    burst never waits on the decoder. ``at_receipt(data, protocol)`` is called on
    each datagram as it is read (a sender lookup), its answer kept with it. An
    ENOBUFS (the kernel dropped messages) is counted and queued as ``(OVERFLOW,
    protocol)`` in place, and reading goes on. Items: ``(ts_ns, data, ancillary,
    protocol, answer)`` tuples or overflows; ``None`` once the drain has stopped
    (``error`` then says why, if it was not :meth:`stop`).
    """

    OVERFLOW = "overflow"

    def __init__(self, socks: list[tuple[socket.socket, int]], *, bufsize: int = 1 << 16,
                 at_receipt: Callable[[bytes, int], Any] | None = None) -> None:
        import queue
        import threading

        self.socks = socks
        self.bufsize = bufsize
        self.at_receipt = at_receipt
        # queue.Queue, not SimpleQueue: CPython 3.11's SimpleQueue.get(timeout=...) blocks
        # for ever when a signal handler runs past the timeout (the main thread's stop)
        self.queue: queue.Queue[Any] = queue.Queue()
        self.overflows = 0
        self.datagrams = 0
        self.truncated = 0
        self.error: OSError | None = None
        self._stop_r, self._stop_w = os.pipe()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="rawlab-netlink-drain",
                                        daemon=True)

    def start(self) -> Drain:
        for sock, _proto in self.socks:
            sock.setblocking(False)
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

    def _read(self, sock: socket.socket, protocol: int, batch: list[Any]) -> None:
        """Everything ``sock`` holds now (at most 4096 datagrams), onto ``batch``."""
        recvmsg = sock.recvmsg
        clock = time.time_ns
        size = self.bufsize
        anc_size = socket.CMSG_SPACE(4) * 2
        trunc_flag = socket.MSG_TRUNC
        note = self.at_receipt
        start = len(batch)
        try:
            while len(batch) - start < 4096:
                data, anc, flags, _addr = recvmsg(size, anc_size)
                if flags & trunc_flag:
                    self.truncated += 1
                batch.append((clock(), data, anc, protocol,
                              note(data, protocol) if note is not None else None))
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            self.overflows += 1
            batch.append((self.OVERFLOW, protocol))
        self.datagrams += sum(1 for item in batch[start:] if item[0] is not self.OVERFLOW)

    def _run(self) -> None:
        import select

        poller = select.poll()
        by_fd = {}
        for sock, proto in self.socks:
            poller.register(sock.fileno(), select.POLLIN)
            by_fd[sock.fileno()] = (sock, proto)
        poller.register(self._stop_r, select.POLLIN)
        ready = [(fd, 0) for fd in by_fd]  # read what is there already, then wait
        try:
            while True:
                batch: list[Any] = []
                for fd, _ev in ready:
                    if fd == self._stop_r or self._stopped:  # (busy sockets: no poll)
                        if batch:  # what this wake-up read before it
                            self.queue.put(batch)
                        return
                    self._read(*by_fd[fd], batch)
                if batch:
                    self.queue.put(batch)
                    ready = [(fd, 0) for fd in by_fd]
                    continue
                ready = poller.poll()
        except OSError as exc:
            self.error = exc
        finally:
            self.queue.put(None)


class MonitorSession:
    """Monitor sockets joined to groups and drained by a thread, and a dump socket.

    ``groups``: rtnetlink group numbers, or ``{protocol: group numbers}`` for sockets
    of several netlink families. The drain starts at once, before any :meth:`seed`,
    so no event falls between a seeding dump and the first event. :meth:`drain`
    yields what arrives, in order; after an rtnetlink :class:`Overflow` it yields
    what was already queued (it is older than a re-dump) and then a :class:`Redump`
    of every seeded kind. :meth:`stop` only sets a flag, so a signal handler may
    call it; the drain ends within 0.2 s and yields what the kernel had already
    handed over. ``at_receipt``: as :class:`Drain` takes it.
    """

    def __init__(self, groups: list[int] | dict[int, list[int]], *, all_nsid: bool = False,
                 rcvbuf: int = 64 << 20,
                 at_receipt: Callable[[bytes, int], Any] | None = None) -> None:
        subs = groups if isinstance(groups, dict) else {NETLINK_ROUTE: groups}
        self.socks: list[tuple[socket.socket, int]] = []
        self.rcvbuf = 0
        try:
            for proto, numbers in subs.items():
                sock, got = open_monitor(numbers, protocol=proto, all_nsid=all_nsid,
                                         rcvbuf=rcvbuf)
                self.socks.append((sock, proto))
                self.rcvbuf = max(self.rcvbuf, got)
            self.dumps = DumpSocket()
        except BaseException:
            for sock, _proto in self.socks:
                sock.close()
            raise
        self._drain = Drain(self.socks, at_receipt=at_receipt).start()
        self._pending: deque[Datagram | Overflow] = deque()
        self._ended = False
        self.seeded: list[str] = []
        self.stopped = False

    @property
    def datagrams(self) -> int:
        return self._drain.datagrams

    @property
    def truncated(self) -> int:
        """Datagrams the kernel cut short (MSG_TRUNC)."""
        return self._drain.truncated

    @property
    def caught_up(self) -> bool:
        """Every item read so far has been yielded (a moment to flush output)."""
        return not self._pending

    def dump(self, kind: str) -> Iterator[bytes]:
        """The buffers of one dump (rawlab.sockets.netlink.dump_request kinds)."""
        return dump_buffers(self.dumps, kind)

    def seed(self, kind: str) -> Iterator[bytes]:
        """A dump of ``kind`` that an overflow will repeat (:class:`Redump`)."""
        if kind not in self.seeded:
            self.seeded.append(kind)
        return self.dump(kind)

    def stop(self) -> None:
        """End :meth:`drain` (safe in a signal handler: it sets a flag)."""
        self.stopped = True

    def drain(self, duration: float | None = None) -> Iterator[Datagram | Overflow | Redump]:
        """Every item as it arrives, until :meth:`stop`, ``duration`` seconds or the drain
        ends; then what was already read. Raises a RawlabError if reading failed."""
        deadline = None if duration is None else time.monotonic() + duration
        while not self.stopped:
            wait = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
            if wait <= 0 or not self._take(wait):
                break
            while self._pending:
                item = self._pending.popleft()
                yield item
                if type(item) is Overflow and item.protocol == NETLINK_ROUTE:
                    yield from self.resync()
        self._drain.stop()
        yield from self._queued()

    def resync(self) -> Iterator[Datagram | Overflow | Redump]:
        """What was queued (older than a re-dump) first, then a :class:`Redump` per seeded kind."""
        yield from self._queued()
        for kind in self.seeded:
            yield Redump(kind, list(self.dump(kind)))

    def _queued(self) -> Iterator[Datagram | Overflow]:
        """Every item already read, without waiting."""
        while self._pending or self._take(None):
            while self._pending:
                yield self._pending.popleft()

    def _take(self, timeout: float | None) -> bool:
        """Move one batch from the drain into ``_pending``; False once there is none to wait
        for (the drain ended, or ``timeout`` None and the queue is empty)."""
        import queue

        from rawlab.errors import explain

        if self._ended:
            return False
        try:
            batch = self._drain.queue.get(timeout=timeout) if timeout is not None \
                else self._drain.queue.get_nowait()
        except queue.Empty:
            return timeout is not None
        if batch is None:
            self._ended = True
            if self._drain.error is not None:
                raise explain(self._drain.error, "read the netlink monitor socket")
            return False
        overflow = Drain.OVERFLOW
        self._pending.extend(Overflow(time.time_ns(), item[1]) if item[0] is overflow
                             else Datagram(*item) for item in batch)
        return True

    def close(self) -> None:
        self._drain.stop()
        for sock, _proto in self.socks:
            sock.close()
        self.dumps.close()

    def __enter__(self) -> MonitorSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
