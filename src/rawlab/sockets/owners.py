"""Who owns the socket at one end of a flow: exact sock_diag look-ups in the network
namespace where the address lives, then /proc (the I/O behind
:mod:`rawlab.analysis.processes`).

    look = OwnerLookup(netns="blue")   # the capture's namespace is asked first
    look.start()                       # namespaces, addresses, every socket that exists now
    look.owner(AF_INET, IPPROTO_TCP, local, lport, remote, rport)   # Answer(owner, final)
    look.close()

Each namespace (those of every process, and the named ones under /run/netns) gets a
sock_diag socket opened inside it, a membership of the destroy groups where the
kernel allows it, and the set of its addresses (RTM_GETADDR). An end whose address
belongs to no namespace is not a socket of this machine: its owner is None. Otherwise
the namespaces holding that address are asked for the socket by its 4-tuple (no
dump), and its inode is mapped to the process holding it
(:class:`~rawlab.sockets.proc.SocketHolders`); loopback addresses are asked in the
capture's namespace only. A socket's cookie, unique while the machine runs, keys a
cache of owners: a socket seen alive once keeps its owner after its process closed
it (orphaned, TIME_WAIT, or destroyed: the destroy message carries the cookie).
:meth:`OwnerLookup.start` fills that cache with every TCP/UDP socket that exists
when the capture starts. ICMP has no sock_diag look-up: an echo's pinging end is read from the
namespace's /proc/net ping socket table (:meth:`OwnerLookup._owner_icmp`).
Whatever is not known is said so
(:data:`~rawlab.records.CLOSED`, :data:`~rawlab.records.NO_SOCKET`,
:data:`~rawlab.records.UNKNOWN`), never guessed.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from rawlab.records import CLOSED, NO_SOCKET, PROCESS, UNKNOWN, SocketOwner
from rawlab.sockets import diag, proc
from rawlab.sockets.netns import entered

# TCP states of a connection a listener holds but no process has accepted yet
_UNACCEPTED = {diag.TCP_SYN_RECV, diag.TCP_NEW_SYN_RECV, diag.TCP_ESTABLISHED,
               diag.TCP_CLOSE_WAIT}
_MAX_COOKIES = 1 << 17
_MAX_DESTROYED = 1 << 17  # destroyed sockets remembered
_ICMP = (socket.IPPROTO_ICMP, socket.IPPROTO_ICMPV6)
_HINTS = 2  # processes looked in first for a new socket of the same namespace and uid
_MAX_AT_SYN = 1 << 16  # owners found at a SYN, not yet asked for by the capture
# how long such an owner answers the capture's question (the capture reads a ring block
# well within it; later, a 4-tuple may have been given to another connection)
_AT_SYN_KEEP_S = 1.0
_DESTROY_GRACE = 0.002  # a destroy message leaves the kernel from a work queue
_DESTROY_KEEP_S = 120.0  # how long a destroyed socket's 4-tuple is remembered
# destroy messages are taken before every look-up that finds no socket, else at most this
# often (so that a namespace's queue of them never overflows: 4 MiB hold ~5,000), and
# sooner for _DRAIN_BUSY_FOR_S once they came faster than _DRAIN_MANY a period
_DRAIN_EVERY_S = 0.25
_DRAIN_BUSY_S = 0.05
_DRAIN_MANY = 256
_DRAIN_BUSY_FOR_S = 5.0
_SCOUT_QUEUE = 4096  # items the SYN watch's thread keeps (rawlab/_syn_watch.c QUEUE)
_MAX_OWNER_OBJS = 4096  # owner objects kept for reuse


# the states a socket with an owner (an inode) can be in: not TIME_WAIT, not a request
_OWNED_STATES = diag.SS_ALL & ~(1 << diag.TCP_TIME_WAIT) & ~(1 << diag.TCP_NEW_SYN_RECV)


class Answer(NamedTuple):
    """One end's owner (None: not a socket of this machine) and whether it is final
    (False: a listener's owner stands in until the connection is accepted: ask again)."""

    owner: SocketOwner | None
    final: bool = True


@dataclass
class Namespace:
    """One network namespace rawlab can ask."""

    inode: int
    path: str
    name: str | None
    look: diag.DiagLookup | None = None
    watch: diag.DestroyWatch | None = None
    addrs: set[bytes] = field(default_factory=set)
    tables: dict[str, int] = field(default_factory=dict)  # /proc/net files opened inside


def _is_loopback(addr: bytes) -> bool:
    return (len(addr) == 4 and addr[0] == 127) or addr == bytes(15) + b"\x01"


class GoneSockets:
    """The sockets the destroy groups reported, each remembered for `keep_s` (`most` at
    most, the oldest forgotten first), found by (namespace, protocol, local port) and the
    rest of the 4-tuple. A whole 4-tuple is a dict look-up; only the few reported with
    zeros (a field the kernel had already reset: they match anything) are compared one by
    one. (They were all compared one by one before: a server port that saw 100
    connections a second made every look-up of a gone socket scan thousands.)"""

    def __init__(self, keep_s: float, most: int) -> None:
        self.keep_s, self.most = keep_s, most
        self._exact: dict[tuple[tuple[int, int, int], bytes, bytes, int], list[int]] = {}
        self._partial: dict[tuple[int, int, int], list[tuple[bytes, bytes, int, int]]] = {}
        # (when, port key, exact key or partial entry, cookie, exact?), oldest first
        self._order: deque[tuple[float, tuple[int, int, int], Any, int, bool]] = deque()

    def __len__(self) -> int:
        return len(self._order)

    def add(self, now: float, port: tuple[int, int, int], local: bytes, remote: bytes,
            rport: int, cookie: int) -> None:
        if any(local) and any(remote) and rport:
            k = (port, local, remote, rport)
            self._exact.setdefault(k, []).append(cookie)
            self._order.append((now, port, k, cookie, True))
        else:
            e = (local, remote, rport, cookie)
            self._partial.setdefault(port, []).append(e)
            self._order.append((now, port, e, cookie, False))

    def prune(self, now: float) -> None:
        order = self._order
        while order and (len(order) > self.most or order[0][0] < now - self.keep_s):
            _when, port, k, cookie, exact = order.popleft()
            if exact:
                lst = self._exact[k]
                lst.remove(cookie)
                if not lst:
                    del self._exact[k]
            else:
                entries = self._partial[port]
                entries.remove(k)
                if not entries:
                    del self._partial[port]

    def cookie(self, port: tuple[int, int, int], local: bytes, remote: bytes,
               rport: int) -> int | None:
        """The cookie of the one destroyed socket that had this 4-tuple (None: none, or
        two different ones)."""
        cookies = set(self._exact.get((port, local, remote, rport), ()))
        for la, ra, rp, c in self._partial.get(port, ()):
            if (la == local or not any(la)) and (ra == remote or not any(ra)) \
                    and rp in (rport, 0):
                cookies.add(c)
        return cookies.pop() if len(cookies) == 1 else None


class OwnerLookup:
    """The owner of a flow's end, from the kernel and /proc; cached by socket cookie.

    ``netns``: the capture's namespace (a /run/netns name; None: this process's).
    ``proc``: the /proc root. ``destroy_groups``: True when every namespace asked
    also reports destroyed sockets (else a socket gone before its look-up is
    :data:`~rawlab.records.UNKNOWN` rather than :data:`~rawlab.records.CLOSED`).
    """

    def __init__(self, netns: str | None = None, proc_root: str = "/proc",
                 run_netns: str = "/run/netns", refresh_s: float = 1.0) -> None:
        self.netns = netns
        self.proc = proc_root
        self.run_netns = run_netns
        self.refresh_s = refresh_s
        self.holders = proc.SocketHolders(proc_root)
        self.namespaces: dict[int, Namespace] = {}
        self.home: Namespace | None = None  # the capture's namespace
        self._by_addr: dict[bytes, tuple[Namespace, ...]] = {}
        self._members: dict[int, list[int]] = {}  # namespace inode -> its pids (at refresh)
        self._facts = proc.FactsCache(proc_root)
        # (namespace, uid) -> (pid, fd) of the processes that last owned such a socket,
        # latest first: where a new socket's inode is looked for first (a client makes many)
        self._hints: dict[tuple[int, int | None], list[tuple[int, int]]] = {}
        # (namespace, port) -> the pid holding a TCP listener there (given to the SYN
        # watch's thread, which looks for the sockets it accepts in that process)
        self._listeners: dict[tuple[int, int], int] = {}
        self._cgroups: dict[int, str | None] = {}
        # (id of a process's facts, uid, namespace inode and name) -> (those facts, owner)
        self._owner_objs: dict[tuple[int, int | None, int, str | None],
                               tuple[proc.ProcessFacts, SocketOwner]] = {}
        self._cookies: OrderedDict[int, SocketOwner] = OrderedDict()
        self._destroyed = GoneSockets(_DESTROY_KEEP_S, _MAX_DESTROYED)
        self._refreshed = 0.0
        self._drained = 0.0
        self.drain_every = _DRAIN_EVERY_S  # (sooner while destroy messages come fast)
        self._busy_until = 0.0
        self.lookups = 0  # sock_diag look-ups sent
        self.destroy_groups = True
        # held by each question: a thread may ask beside the capture's (analysis.syn_watch)
        self.lock = threading.Lock()
        # owners found at a SYN, by 4-tuple, for the capture's first question (when, owner)
        self._at_syn: OrderedDict[tuple[int, bytes, int, bytes, int],
                                  tuple[float, SocketOwner]] = OrderedDict()
        self._scout: Any = None  # the SYN watch's compiled thread (rawlab._syn_watch)
        self.syn_found = 0  # SYNs whose sender was named at once
        self.accept_found = 0  # accepting ends the SYN watch named as they were accepted
        self.syn_errors = 0  # SYN look-ups that failed (the capture asks again later)

    # -- set-up ------------------------------------------------------------------

    def start(self) -> None:
        """Find the namespaces, open a socket in each, and learn the owner of every TCP and
        UDP socket that exists now (one /proc walk)."""
        home_inode = self._home_inode()
        self._refresh(force=True)
        self.home = self.namespaces.get(home_inode)
        self.learn()

    def learn(self) -> None:
        """Learn the owner of every TCP and UDP socket that exists now, in every namespace
        (one /proc walk): they stay known after their processes close them."""
        self.holders.walk()
        for ns in self.namespaces.values():
            self._learn_existing(ns)

    def _home_inode(self) -> int:
        path = (os.path.join(self.run_netns, self.netns) if self.netns
                else "/proc/thread-self/ns/net")
        return os.stat(path).st_ino

    def _refresh(self, *, force: bool = False) -> None:
        """Namespaces and their addresses again (at most once per ``refresh_s``)."""
        now = time.monotonic()
        if not force and now - self._refreshed < self.refresh_s:
            return
        self._refreshed = now
        members: dict[int, list[int]] = {}
        found = proc.net_namespaces(self.proc, self.run_netns, members)
        self._members = members
        for inode in [i for i in self.namespaces if i not in found]:
            self._forget(self.namespaces.pop(inode))
            for k in [k for k in self._listeners if k[0] == inode]:  # (and what it held)
                del self._listeners[k]
            for h in [h for h in self._hints if h[0] == inode]:
                del self._hints[h]
            if self._scout is not None:
                self._scout.forget(inode)
        for inode, path in found.items():
            ns = self.namespaces.get(inode)
            if ns is None:
                name = os.path.basename(path) if path.startswith(self.run_netns) else None
                ns = self.namespaces[inode] = Namespace(inode, path, name)
                self._open(ns)
                if self._scout is not None:
                    self._scout_ns(ns)
            if ns.look is not None:
                ns.addrs = self._addresses(ns)
        by_addr: dict[bytes, tuple[Namespace, ...]] = {}
        for ns in self.namespaces.values():  # whole sets at once: a namespace may hold 100k
            for a in ns.addrs & by_addr.keys():
                by_addr[a] = (*by_addr[a], ns)
            by_addr.update(dict.fromkeys(ns.addrs - by_addr.keys(), (ns,)))
        self._by_addr = by_addr
        if self._scout is not None:
            self._scout_routes()

    def _open(self, ns: Namespace) -> None:
        try:
            with entered(ns.path):
                ns.look = diag.DiagLookup()
                try:
                    ns.watch = diag.DestroyWatch()
                except OSError:
                    ns.watch = None
                    self.destroy_groups = False
        except Exception:
            ns.look = None

    def _addresses(self, ns: Namespace) -> set[bytes]:
        from rawlab.sockets.netlink import DumpSocket

        try:
            with entered(ns.path), DumpSocket() as nl:
                return nl.local_addresses()
        except Exception:
            return set()

    @staticmethod
    def _forget(ns: Namespace) -> None:
        for s in (ns.look, ns.watch):
            if s is not None:
                s.close()
        for fd in ns.tables.values():
            os.close(fd)
        ns.tables.clear()

    def _learn_existing(self, ns: Namespace) -> None:
        if ns.look is None:
            return
        for fam in (socket.AF_INET, socket.AF_INET6):
            for proto in (socket.IPPROTO_TCP, socket.IPPROTO_UDP):
                try:  # (TIME_WAIT and request sockets have no owner to learn)
                    replies = ns.look.dump(fam, proto, _OWNED_STATES)
                except Exception:
                    continue
                for m in replies:
                    s = diag.inet_socket(m.payload)
                    if s is not None and s.inode:
                        owner = self._resolve(s, ns)
                        if s.state == diag.TCP_LISTEN and proto == socket.IPPROTO_TCP:
                            self._listener(ns, m.payload[4] << 8 | m.payload[5], owner)

    # -- the SYN watch's compiled thread ------------------------------------------

    def attach(self, scout: Any) -> None:
        """Keep the SYN watch's compiled thread (:class:`rawlab._syn_watch.Watcher`)
        able to ask on its own: a sock_diag socket of its own in each namespace, where
        each address lives, each namespace's processes, and from now on where the last
        owners of a namespace's and uid's sockets held them (the hints: given as their
        facts are read, so that the /proc directory the thread opens names that
        process), and which process holds each TCP listener known (it looks there for the
        sockets the listener's connections become once accepted); until :meth:`detach`
        or :meth:`close`. What it finds is finished by :meth:`take_syns`."""
        with self.lock:
            self._scout = scout
            for ns in self.namespaces.values():
                self._scout_ns(ns)
            self._scout_routes()
            for (netns, port), pid in self._listeners.items():
                scout.listener(netns, port, pid)

    def detach(self) -> None:
        with self.lock:
            self._scout = None

    def _scout_ns(self, ns: Namespace) -> None:
        if ns.look is None:
            return
        try:
            with entered(ns.path):
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                     diag.NETLINK_SOCK_DIAG)
        except Exception:  # (gone meanwhile, or not to be entered: asked here instead)
            return
        self._scout.namespace(ns.inode, sock.detach())

    def _scout_routes(self) -> None:
        self._scout.members(self._members)
        home = self.home.inode if self.home is not None and self.home.look is not None else None
        self._scout.routes(home, [(a, w[0].inode) for a, w in self._by_addr.items()
                                  if len(w) == 1 and w[0].look is not None])

    def take_syns(self) -> None:
        """Finish what the SYN watch's thread found (the capture's questions do it
        first too)."""
        with self.lock:
            self._take_syns()

    def _take_syns(self) -> None:
        scout = self._scout
        if scout is None:
            return
        try:
            items = scout.take()
        except Exception:  # (the capture asks for itself)
            return
        if not items:  # (asked before each of the capture's questions: mostly none)
            return
        from rawlab._syn_watch import ASK, ERROR, GONE

        if len(items) >= _SCOUT_QUEUE:  # some were dropped: an answer kept may be stale
            self._at_syn.clear()
        if items and time.monotonic() - self._drained >= self.drain_every:
            try:  # (the destroy groups' queues kept short, as the capture's own questions do)
                self._drain()
            except OSError:
                pass
        tcp = socket.IPPROTO_TCP
        for (kind, fam, src, sport, dst, dport, netns, found, pid, fd, alive, _err,
             facts, end) in items:
            family = socket.AF_INET if fam == 4 else socket.AF_INET6
            key = (tcp, src, sport, dst, dport)
            ns = self.namespaces.get(netns)
            # (an accepting end found again: a SYN sent again after it was accepted)
            again = end and found is not None and found[3] in self._cookies
            try:
                if kind in (GONE, ERROR):
                    self.lookups += 1
                    self.syn_errors += kind == ERROR
                    self._at_syn.pop(key, None)  # (the capture asks, and says why)
                    continue
                if kind == ASK or ns is None or ns.look is None:
                    ans = self._owner(family, tcp, src, sport, dst, dport)
                else:
                    self.lookups += 1
                    read = proc.facts_from(pid, *facts) if facts is not None else None
                    ans = self._after_held(ns, diag.InetSocket(*found), pid, fd, alive == 1,
                                           (family, src, sport, dst, dport), read,
                                           hint=not end)
            except Exception:  # the capture's own look-up of this flow says what is known
                self.syn_errors += 1
                continue
            self._keep_at_syn(key, ans, end, count=not again)

    def _keep_at_syn(self, key: tuple[int, bytes, int, bytes, int], ans: Answer,
                     end: int = 0, *, count: bool = True) -> None:
        """Keep what the SYN watch found of a connection's end (`end` 0: the connecting
        one, at its SYN; 1: the accepting one, once accepted) for the capture's first
        question about it (`count` False: named before, not counted again)."""
        at = self._at_syn
        at.pop(key, None)  # (an answer about an earlier connection of this 4-tuple)
        if ans.final and ans.owner is not None and ans.owner.state == PROCESS:
            if end and count:
                self.accept_found += 1
            elif not end:
                self.syn_found += 1
            now = time.monotonic()
            at[key] = (now, ans.owner)
            while len(at) > _MAX_AT_SYN or now - next(iter(at.values()))[0] >= _AT_SYN_KEEP_S:
                at.popitem(last=False)

    def close(self) -> None:
        with self.lock:  # (not in the middle of a question a thread asks)
            self._scout = None
            for ns in self.namespaces.values():
                self._forget(ns)
            self.namespaces.clear()
            self._facts.close()

    # -- the question ------------------------------------------------------------

    def owner(self, family: int, protocol: int, local: bytes, lport: int, remote: bytes,
              rport: int) -> Answer:
        """Who holds the socket whose local end is (local, lport) and whose peer is
        (remote, rport)."""
        with self.lock:
            if self._scout is not None:
                self._take_syns()
            got = self._at_syn.pop((protocol, local, lport, remote, rport), None)
            if got is not None and time.monotonic() - got[0] < _AT_SYN_KEEP_S:
                return Answer(got[1])
            return self._owner(family, protocol, local, lport, remote, rport)

    def _after_held(self, ns: Namespace, s: diag.InetSocket, pid: int, fd: int, lived: bool,
                    end: tuple[int, bytes, int, bytes, int],
                    facts: proc.ProcessFacts | None = None, *, hint: bool = True) -> Answer:
        """The owner of TCP socket `s`, a connecting one or an accepted one (`end`: its
        family, local address and port, remote address and port), which process `pid`
        held at `fd` when asked (pid -1: no process asked first did; `lived`: that
        process was seen alive then, as it was when its facts were read: they are its
        even if it has exited since; `facts`: read when it was found, by the SYN watch's
        thread; `hint` False: an accepted socket, found in its listener's process, which
        does not become the first place a new socket of that namespace and uid is looked
        for)."""
        if pid >= 0 and s.state != diag.TCP_LISTEN and s.cookie not in self._cookies:
            owner = self._held_by(s, ns, pid, fd, lived, facts, hint=hint)
            if owner is not None:
                self.holders.remember(s.inode, pid, fd)
                return Answer(owner)
        family, local, lport, remote, rport = end
        return self._answer(ns, s, family, socket.IPPROTO_TCP, local, lport, remote, rport)

    def _owner(self, family: int, protocol: int, local: bytes, lport: int, remote: bytes,
               rport: int) -> Answer:
        if _is_loopback(local):
            if self.home is None:  # (the capture's namespace could not be asked)
                return Answer(SocketOwner(UNKNOWN))
            where = (self.home,)
        else:
            where = self._by_addr.get(local)
            if where is None:
                self._refresh()
                where = self._by_addr.get(local)
            if not where:
                return Answer(None)
        if protocol in _ICMP:
            return self._owner_icmp(where, family, protocol, local, lport, remote, rport)
        if time.monotonic() - self._drained >= self.drain_every:
            self._drain()  # (a socket asked for and found needs none: only the gone do)
        answers = [a for a in (self._ask(ns, family, protocol, local, lport, remote, rport)
                               for ns in where if ns.look is not None) if a is not None]
        if len(answers) == 1:
            return answers[0]
        if len(answers) > 1:  # that 4-tuple is a socket in several namespaces: say so
            return Answer(SocketOwner(UNKNOWN))
        ns = where[0]
        self._drain()
        return Answer(self._gone(ns, family, protocol, local, lport, remote, rport))

    def _owner_icmp(self, where: tuple[Namespace, ...], family: int, protocol: int,
                    local: bytes, ident: int, remote: bytes, _rport: int) -> Answer:
        """ICMP echo: the end that sent the request and takes the reply (`ident`, the echo
        identifier, is its port: :func:`rawlab.analysis.processes.flow_of`) is the ping
        socket bound to that identifier, from the namespace's /proc/net/icmp[6]
        (sock_diag lists no ping sockets). Not known (never guessed): the other end (the
        kernel answers), an echo a raw socket sent (a raw socket takes every packet of its
        protocol: which one sent it cannot be told), a socket already closed (ICMP has no
        destroy messages), a process rawlab may not read."""
        ns = where[0]
        unknown = Answer(SocketOwner(UNKNOWN, netns=ns.inode, netns_name=ns.name))
        if not ident:
            return unknown
        found: list[tuple[Namespace, int, int]] = []
        for ns in where:
            for la, lp, ra, _rp, uid, inode in proc.parse_proc_net_inet(
                    self._ping_table(ns, family)):
                if inode and lp == ident and (not any(la) or la == local) \
                        and (not any(ra) or ra == remote):
                    found.append((ns, uid, inode))
        if len(found) != 1:
            return unknown
        ns, uid, inode = found[0]
        return Answer(self._resolve(diag.InetSocket(0, inode, uid, 0, None), ns))

    def _ping_table(self, ns: Namespace, family: int) -> str:
        """The namespace's /proc/net/icmp (or icmp6): a file opened inside it once, read
        again from its start each time ("" when it cannot be)."""
        name = "icmp" if family == socket.AF_INET else "icmp6"
        fd = ns.tables.get(name)
        if fd is None:
            try:
                with entered(ns.path):
                    fd = os.open(f"/proc/thread-self/net/{name}", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return ""
            ns.tables[name] = fd
        try:
            parts = []
            os.lseek(fd, 0, os.SEEK_SET)
            while chunk := os.read(fd, 65536):
                parts.append(chunk)
        except OSError:
            return ""
        return b"".join(parts).decode("ascii", "replace")

    def _ask(self, ns: Namespace, family: int, protocol: int, local: bytes, lport: int,
             remote: bytes, rport: int) -> Answer | None:
        assert ns.look is not None
        self.lookups += 1
        s = ns.look.find(family, protocol, local, lport, remote, rport)
        if s is None:
            return None
        return self._answer(ns, s, family, protocol, local, lport, remote, rport)

    def _answer(self, ns: Namespace, s: diag.InetSocket, family: int, protocol: int,
                local: bytes, lport: int, remote: bytes, rport: int) -> Answer:
        """The owner of socket `s`, the kernel's answer about that 4-tuple in `ns`."""
        assert ns.look is not None
        known = self._cookies.get(s.cookie)
        if known is not None:
            self._cookies.move_to_end(s.cookie)
            return Answer(known)
        if s.inode:
            look = ns.look
            gone: list[bool] = []  # once gone, it stays gone: not asked again

            def alive() -> bool:  # still held by a process (else no walk of them all)
                if not gone:
                    again = look.find(family, protocol, local, lport, remote, rport)
                    self.lookups += 1
                    if again is None or again.inode != s.inode:
                        gone.append(True)
                return not gone

            if protocol == socket.IPPROTO_TCP and s.state == diag.TCP_LISTEN:
                owner = self._resolve(s, ns, alive)
                self._listener(ns, lport, owner)
                return Answer(owner, final=False)
            owner = self._resolve(s, ns, alive)
            if owner.state != PROCESS and not alive():  # closed while /proc was read
                return Answer(SocketOwner(CLOSED, uid=s.uid, netns=ns.inode,
                                          netns_name=ns.name))
            return Answer(owner)
        if protocol == socket.IPPROTO_TCP and s.state in _UNACCEPTED:
            lst = ns.look.find(family, protocol, local, lport, bytes(len(remote)), 0)
            self.lookups += 1
            if lst is not None and lst.state == diag.TCP_LISTEN and lst.inode:
                owner = self._resolve(lst, ns)
                self._listener(ns, lport, owner)
                return Answer(owner, final=False)
        uid = s.uid if s.state != diag.TCP_TIME_WAIT else None
        return Answer(SocketOwner(CLOSED, uid=uid, netns=ns.inode, netns_name=ns.name))

    def _resolve(self, s: diag.InetSocket, ns: Namespace,
                 alive: Callable[[], bool] | None = None) -> SocketOwner:
        """The owner of a live socket (inode != 0), remembered under its cookie (`alive`:
        :meth:`proc.SocketHolders.find`'s)."""
        owner = None
        hint = self._hints.setdefault((ns.inode, s.uid), [])
        for pid, fd in self.holders.find(s.inode, hint, alive, self._members.get(ns.inode, ())):
            owner = self._held_by(s, ns, pid, fd)
            if owner is not None:
                break
        if owner is None:  # an inode no process holds: a kernel socket, or one in flight
            cg = self._cgroup(s.cgroup_id)
            return SocketOwner(UNKNOWN, uid=s.uid, cgroup=cg,
                                container=proc.container_id(cg) if cg else None,
                                netns=ns.inode, netns_name=ns.name)
        return owner

    def _held_by(self, s: diag.InetSocket, ns: Namespace, pid: int, fd: int,
                 lived: bool = False, facts: proc.ProcessFacts | None = None, *,
                 hint: bool = True) -> SocketOwner | None:
        """The owner of socket `s` that process `pid` holds at `fd` (None: the process is
        gone, unless `lived`: see :meth:`_after_held`), remembered under the socket's
        cookie; (pid, fd) becomes the first place a new socket of that namespace and uid
        is looked for unless `hint` is False (`facts`: read already)."""
        if facts is not None:
            self._facts.keep(facts)
        f = facts or self._facts.get(pid, lived)
        if f is None:
            return None
        # (one owner object for each process, uid and namespace: a client's next socket
        # is the same owner again)
        ok = (id(f), s.uid, ns.inode, ns.name)
        got = self._owner_objs.get(ok)
        if got is not None and got[0] is f:
            owner = got[1]
        else:
            owner = SocketOwner(PROCESS, f.pid, f.pid if f.threads == 1 else None, f.comm,
                                f.cmdline, s.uid, f.cgroup, f.container, ns.inode, ns.name)
            if len(self._owner_objs) >= _MAX_OWNER_OBJS:
                self._owner_objs.clear()
            self._owner_objs[ok] = (f, owner)
        if hint:
            hints = self._hints.setdefault((ns.inode, s.uid), [])
            if not hints or hints[0] != (pid, fd):
                hints[:] = [(pid, fd), *(h for h in hints if h[0] != pid)][:_HINTS]
            if self._scout is not None:  # (also the same again: the thread's table is
                # smaller, and its walks reorder it)
                self._scout.hint(ns.inode, -1 if s.uid is None else s.uid, pid, fd)
        if s.cookie:  # (a socket from /proc/net has none)
            self._cookies[s.cookie] = owner
            if len(self._cookies) > _MAX_COOKIES:
                self._cookies.popitem(last=False)
        return owner

    def _listener(self, ns: Namespace, port: int, owner: SocketOwner) -> None:
        """`owner` holds a TCP listener on `port` in `ns`: the SYN watch's thread looks in
        its process for the sockets that listener's connections become once accepted."""
        if owner.state != PROCESS or owner.pid is None:
            return
        self._listeners[(ns.inode, port)] = owner.pid
        if self._scout is not None:  # (the same pid again: the thread keeps what it had)
            self._scout.listener(ns.inode, port, owner.pid)

    def _cgroup(self, cgroup_id: int | None) -> str | None:
        if cgroup_id is None:
            return None
        if cgroup_id not in self._cgroups:
            self._cgroups[cgroup_id] = proc.cgroup_by_id(cgroup_id)
        return self._cgroups[cgroup_id]

    # -- sockets already gone ----------------------------------------------------

    def _drain(self) -> bool:
        """Take the destroy messages waiting in every namespace; True if there were any."""
        n = 0
        now = time.monotonic()
        since, self._drained = now - self._drained, now
        gone = self._destroyed
        for ns in self.namespaces.values():
            if ns.watch is None:
                continue
            for d in ns.watch.drain():
                n += 1
                gone.add(now, (ns.inode, d.protocol, d.lport), d.local, d.remote, d.rport,
                         d.cookie)
            if ns.watch.lost:
                self.destroy_groups = False  # some were dropped: no longer sure
        gone.prune(now)
        # (the rate over a period at least: a take soon after another sees few)
        if n / max(since, _DRAIN_BUSY_S) * _DRAIN_EVERY_S > _DRAIN_MANY:
            self._busy_until = now + _DRAIN_BUSY_FOR_S
        self.drain_every = _DRAIN_BUSY_S if now < self._busy_until else _DRAIN_EVERY_S
        return n > 0

    def _destroyed_cookie(self, ns: Namespace, protocol: int, local: bytes, lport: int,
                          remote: bytes, rport: int) -> int | None:
        """The cookie of the one destroyed socket that had this 4-tuple. A message may carry
        zeros where the kernel had already reset a field (an aborted TCP socket keeps
        its local port and peer address only; an unconnected UDP socket has no peer), so
        zero matches anything; two different sockets matching is no answer (None)."""
        return self._destroyed.cookie((ns.inode, protocol, lport), local, remote, rport)

    def _gone(self, ns: Namespace, family: int, protocol: int, local: bytes, lport: int,
              remote: bytes, rport: int) -> SocketOwner:
        """No socket of that 4-tuple now: one destroyed (its owner, if it was seen alive),
        none at all, or not known."""
        cookie = self._destroyed_cookie(ns, protocol, local, lport, remote, rport)
        if cookie is None and ns.watch is not None:
            select.select([ns.watch], [], [], _DESTROY_GRACE)
            if self._drain():
                cookie = self._destroyed_cookie(ns, protocol, local, lport, remote, rport)
        if cookie is not None:
            known = self._cookies.get(cookie)
            return known if known is not None else SocketOwner(
                CLOSED, netns=ns.inode, netns_name=ns.name)
        state = NO_SOCKET if ns.watch is not None and not ns.watch.lost else UNKNOWN
        return SocketOwner(state, netns=ns.inode, netns_name=ns.name)
