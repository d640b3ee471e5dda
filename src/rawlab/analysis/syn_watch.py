"""The connecting end of each TCP connection looked up the moment its SYN passes, so that
a client which connects, talks and exits within the capture's latency (a ring block is
read when it is full or after its timeout: up to 100 ms later) is still named.

    watch = SynWatch(lookup, "veth1", netns="blue", bpf="port 80")
    watch.start()    # a packet socket that sees only SYNs, and the threads that read it
    ...              # the capture's own look-ups, later, find those sockets by cookie
    watch.close()    # .syns, .found: SYNs read, and how many named a process at once

The kernel wakes the watch for every SYN (a socket without a ring). A compiled thread
(:mod:`rawlab._syn_watch`) that never takes the interpreter lock reads it and asks the
kernel for the connecting socket in the namespace its address lives in (its own
sock_diag socket there), then reads the fd links where the processes that last held a
socket of that namespace and uid held it (a client making one connection after another
gets the same number back): ~10 µs, the capture's loop never waited for. It runs at
real-time priority where it may (a SYN's wake-up preempts the capture's loop on a shared
CPU; a flood of SYNs puts it back among the other threads). When no such process holds
the socket (a new one), the thread walks /proc itself, newest processes first, and reads
the holder's /proc files at once (a short-lived client is gone milliseconds later). The
owner it found is finished (the process's facts) at the capture's next question
(:meth:`rawlab.sockets.owners.OwnerLookup.take_syns`), which is answered with it; later
ones find it under the socket's cookie, even after the socket closed (TIME_WAIT keeps
the cookie; a destroyed socket's message carries it). What the thread cannot finish (20
walks in 100 ms spent, an address it has no route for) wakes this module's Python
thread, which goes on at once from what the thread found. The accepting end's socket
does not exist before the handshake ends: when the SYN goes to a listener of this
machine whose process is known, the thread asks for that end 100 µs after the SYN and
again (up to 50 ms) until it has an inode, then reads the listener's process's fd links
for it (the fds that held its last accepted sockets first): a server that answers and
closes within a millisecond is named too (counted apart: ``accepted``). Not found
there (another process accepted it), the capture asks, and meanwhile names the
listener's process. (A server that forks for each connection is named by the parent
if the parent still holds the accepted socket when it is read: a holder of it, not
the child that serves it.) A socket that lives shorter than the question is still missed:
said so, never guessed. Frames of other link types than Ethernet and raw IP leave the
watch off.
"""

from __future__ import annotations

import os
import select
import socket
import threading
from typing import Any

from rawlab.sockets.owners import OwnerLookup

# a TCP segment with SYN and without ACK (IPv4 any header length; IPv6 without extension
# headers, where the flags are the 54th byte)
SYN_FILTER = ("(tcp[tcpflags] & (tcp-syn|tcp-ack)) == tcp-syn or "
              "(ip6 and ip6[6] == 6 and (ip6[53] & 0x12) == 2)")


class SynWatch:
    """A thread that asks `lookup` for the sender of each SYN on `iface` in `netns` (only
    SYNs that also pass `bpf`: the capture's own filter)."""

    def __init__(self, lookup: OwnerLookup, iface: str, *, netns: str | None = None,
                 bpf: str | None = None) -> None:
        self.lookup = lookup
        self.iface, self.netns = iface, netns
        self.filter = f"({bpf}) and ({SYN_FILTER})" if bpf and bpf.strip() else SYN_FILTER
        self.off: str | None = None  # why the watch did not start, or stopped
        self._sock: socket.socket | None = None
        self._watcher: Any = None
        self._thread: threading.Thread | None = None
        self._wake: tuple[int, int] | None = None
        self._notify: int | None = None
        self._counts: dict[str, int] = {}  # the compiled thread's, once it is stopped

    @property
    def syns(self) -> int:
        """SYNs read."""
        counts = self._watcher.counts if self._watcher is not None else self._counts
        return counts.get("syns", 0)

    @property
    def dropped(self) -> int:
        """SYNs the compiled thread read, and accepting ends it found, but could not queue
        (its queue was full): the capture asked about them itself, later."""
        counts = self._watcher.counts if self._watcher is not None else self._counts
        return counts.get("dropped", 0)

    @property
    def found(self) -> int:
        """Of them, those whose sender was a process when asked."""
        return self.lookup.syn_found

    @property
    def accepted(self) -> int:
        """Accepting ends named as they were accepted (the connection's other end, asked
        for after its SYN until a process held it)."""
        return self.lookup.accept_found

    @property
    def errors(self) -> int:
        """Look-ups that failed (the capture asks again later)."""
        return self.lookup.syn_errors

    def start(self) -> SynWatch:
        """Open the socket and start the threads. When the capture's filter lets no TCP
        SYN through (libpcap: "expression rejects all packets"), the socket cannot be
        opened, or its frames are of a link type the thread does not read, the watch stays
        off (`off` says why): the capture's own questions are asked as before."""
        from rawlab._syn_watch import Watcher, syn_of
        from rawlab.errors import RawlabError
        from rawlab.sockets.netlink_monitor import set_rcvbuf
        from rawlab.sockets.packet import open_watch

        try:
            self._sock, linktype = open_watch(self.iface, self.filter, netns=self.netns)
        except RawlabError as exc:
            self.off = exc.message
            return self
        if syn_of(b"", linktype) is False:
            self.off = f"link type {linktype}: the SYN watch reads Ethernet and raw IP"
            self.close()
            return self
        try:
            set_rcvbuf(self._sock, 4 << 20)  # (a burst of ~4,000 SYNs waits, not dropped)
            self._notify = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._wake = os.pipe()
            self._watcher = Watcher(self._sock.fileno(), linktype, self.lookup.proc,
                                    self._notify)
            self.lookup.attach(self._watcher)
            self._watcher.start()
            self._thread = threading.Thread(target=self._run, name="rawlab-syn-watch",
                                            daemon=True)
            self._thread.start()
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self) -> SynWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        """Woken by the compiled thread when a SYN needs more than it can do (a walk of
        /proc); else as often as the destroy groups' queues need taking (every 250 ms, 50
        while they fill fast), for what waits (most is taken by the capture's questions
        first, several at a time)."""
        assert self._notify is not None and self._wake is not None
        stop, watcher = self._wake[0], self._watcher
        poller = select.poll()  # (not select(): a capture may hold over 1,024 fds)
        poller.register(self._notify, select.POLLIN)
        poller.register(stop, select.POLLIN)
        try:
            while True:
                ready = poller.poll(int(self.lookup.drain_every * 1000))
                if any(f == stop for f, _ev in ready):
                    return
                if ready:
                    try:
                        os.eventfd_read(self._notify)
                    except BlockingIOError:
                        pass
                self.lookup.take_syns()
                failed = watcher.failed
                if failed is not None:
                    self.off = f"stopped: {failed}"
                    return
        except Exception as exc:  # the watch stops; the capture asks as before
            self.off = f"stopped: {exc}"

    def close(self) -> None:
        """Stop the threads (the compiled one finishes the question it is in) and close
        the socket."""
        if self._watcher is not None:  # (its own fds: stopped whatever the other does)
            self._watcher.stop()
            self.lookup.detach()
            self._counts = self._watcher.counts
            self._watcher = None  # (its sock_diag sockets closed with it)
        if self._thread is not None and self._wake is not None:
            os.write(self._wake[1], b"x")
            self._thread.join(5.0)
            if self._thread.is_alive():  # stuck in a question: leave it what it uses
                return
            self._thread = None
        if self._wake is not None:
            for fd in self._wake:
                os.close(fd)
            self._wake = None
        if self._notify is not None:
            os.close(self._notify)
            self._notify = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
