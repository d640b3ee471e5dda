"""The rtnetlink monitor's I/O: a socket joined to groups, drained by a thread, and its dumps.

    with MonitorSession(group_numbers(["route"])) as session, stop_on_signals(session.stop):
        seed = session.seed("routes")          # the table before the first event (buffers)
        for item in session.drain(duration):   # Datagram | Overflow | Redump, in order
            ...                                # after an Overflow: what was queued, then
                                               # a Redump of every seeded kind

I/O only: the datagrams stay bytes; rawlab.decode.rtnl reads them and
rawlab.analysis.netlink keeps the tables and diffs a re-dump against them.
A separate thread (:class:`Drain`) moves datagrams from the socket into memory
as fast as the kernel fills it, so a burst never waits on the decoder; an
ENOBUFS (the kernel dropped messages) becomes an :class:`Overflow` in place.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
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
    """One datagram the drain read: when, its bytes, its ancillary data."""

    ts_ns: int
    data: bytes
    anc: list[tuple[int, int, bytes]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Overflow:
    """The socket said ENOBUFS: the kernel dropped messages it could not queue."""

    ts_ns: int


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


class MonitorSession:
    """A monitor socket joined to ``groups`` and drained by a thread, and a dump socket.

    The drain starts at once, before any :meth:`seed`, so no event falls between
    a seeding dump and the first event. :meth:`drain` yields what arrives, in
    order; after an :class:`Overflow` it yields what was already queued (it is
    older than a re-dump) and then a :class:`Redump` of every seeded kind.
    :meth:`stop` only sets a flag, so a signal handler may call it; the drain
    ends within 0.2 s and yields what the kernel had already handed over.
    """

    def __init__(self, groups: list[int], *, all_nsid: bool = False,
                 rcvbuf: int = 64 << 20) -> None:
        self.sock, self.rcvbuf = open_monitor(groups, all_nsid=all_nsid, rcvbuf=rcvbuf)
        try:
            self.dumps = DumpSocket()
        except BaseException:
            self.sock.close()
            raise
        self._drain = Drain(self.sock).start()
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
                if type(item) is Overflow:
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
                raise explain(self._drain.error, "read the rtnetlink monitor socket")
            return False
        overflow = Drain.OVERFLOW
        self._pending.extend(Overflow(time.time_ns()) if item is overflow else Datagram(*item)
                             for item in batch)
        return True

    def close(self) -> None:
        self._drain.stop()
        self.sock.close()
        self.dumps.close()

    def __enter__(self) -> MonitorSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
