"""The connecting end of each TCP connection looked up the moment its SYN passes, so that
a client which connects, talks and exits within the capture's latency (a ring block is
read when it is full or after its timeout: up to 100 ms later) is still named.

    watch = SynWatch(lookup, "veth1", netns="blue", bpf="port 80")
    watch.start()    # a packet socket that sees only SYNs, and the thread that reads it
    ...              # the capture's own look-ups, later, find those sockets by cookie
    watch.close()    # .syns, .found: SYNs read, and how many named a process at once

The owner found is kept by the lookup (:meth:`rawlab.sockets.owners.OwnerLookup.
owner_at_syn`): the capture's first question about that end is answered with it, and
later ones find it under the socket's cookie, even after the socket closed (TIME_WAIT
keeps the cookie; a destroyed socket's message carries it). The kernel wakes the watch
for every SYN (a socket without a ring). The accepting end is not asked here: its
socket does not exist before the handshake ends (the capture asks for it, and meanwhile
names the listener's process). The question is one compiled call when a process that
last held a socket of the same namespace and uid holds this one at the same fd (a client
making one connection after another): the kernel's answer and a readlink or two
(:meth:`OwnerLookup._held`); else it goes on from the socket found, /proc walked from
those processes, then the socket's own namespace's. A socket that lives shorter than
the watch's question (the thread's wake-up and the interpreter lock, then ~0.1 ms of
work) is still missed: said so, never guessed.
"""

from __future__ import annotations

import os
import select
import socket
import threading

from rawlab.analysis.processes import flow_of
from rawlab.records import PROCESS
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
        self.syns = 0  # SYNs read
        self.found = 0  # of them, those whose sender was a process when asked
        self.errors = 0  # look-ups that failed (the capture asks again later)
        self.off: str | None = None  # why the watch did not start
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._wake: tuple[int, int] | None = None

    def start(self) -> SynWatch:
        """Open the socket and start the thread. When the capture's filter lets no TCP
        SYN through (libpcap: "expression rejects all packets"), or the socket cannot be
        opened, the watch stays off (`off` says why): the capture's own questions are
        asked as before."""
        from rawlab.errors import RawlabError
        from rawlab.sockets.packet import open_watch

        try:
            self._sock, self._linktype = open_watch(self.iface, self.filter, netns=self.netns)
        except RawlabError as exc:
            self.off = exc.message
            return self
        self._sock.setblocking(False)
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._run, name="rawlab-syn-watch",
                                        daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> SynWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        from rawlab._kernels import recv_nowait  # (the lock kept: see its doc)

        assert self._sock is not None and self._wake is not None
        fd, stop = self._sock.fileno(), self._wake[0]
        poller = select.poll()  # (not select(): a capture may hold over 1,024 fds)
        poller.register(fd, select.POLLIN)
        poller.register(stop, select.POLLIN)
        try:
            while True:
                if any(f == stop for f, _ev in poller.poll()):
                    return
                while (data := recv_nowait(fd, 256)) is not None:
                    self._syn(data)
        except Exception as exc:  # the watch stops; the capture asks as before
            self.off = f"stopped: {exc}"

    def _syn(self, data: bytes) -> None:
        got = flow_of(data, self._linktype)
        if got is None or got[1] != socket.IPPROTO_TCP:
            return
        fam, _proto, src, sport, dst, dport, _flags = got
        self.syns += 1
        family = socket.AF_INET if fam == 4 else socket.AF_INET6
        try:
            ans = self.lookup.owner_at_syn(family, src, sport, dst, dport)
        except Exception:  # the capture's own look-up of this flow says what is known
            self.errors += 1
            return
        if ans.owner is not None and ans.owner.state == PROCESS:
            self.found += 1

    def close(self) -> None:
        """Stop the thread (it finishes the look-up it is in) and close the socket."""
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
        if self._sock is not None:
            self._sock.close()
            self._sock = None
