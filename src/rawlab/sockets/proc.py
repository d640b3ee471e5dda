"""Which process holds a socket: /proc/*/fd links, /proc/PID/comm, /proc/net/netlink.

    inode_owners()                 # {socket inode: [Owner(pid, comm, fd), ...]} (ss -p)
    PortOwners().lookup(portid)    # the process behind a netlink port id (nlmsg_pid)
    PortOwners().attribute(portid) # ... or Unnamed: why there is none (kernel, gone)
    holders = SocketHolders(); holders.walk()      # one walk at start, then
    holders.find(inode)            # [(pid, fd)]: checked, or found by a partial walk
    process_facts(pid)             # ProcessFacts: comm, cmdline, uid, cgroup, threads
    net_namespaces()               # {netns inode: a path to enter it} of every process
    TaskExits.open().name(pid)     # the name of a process that exited (TASKSTATS)
    sockstat()                     # the counters `ss -s` prints

Everything here is given its ``/proc`` root, so tests build a fake one.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple


class Owner(NamedTuple):
    pid: int
    comm: str
    fd: int


@dataclass(frozen=True, slots=True)
class Process:
    pid: int
    comm: str
    how: str  # "socket": holds that netlink socket; "pid": only its pid equals the port id


@dataclass(frozen=True, slots=True)
class Unnamed:
    """Why the sender of a message has no name."""

    portid: int
    how: str  # "kernel": nlmsg_pid 0; "gone": no process holds the port any more
    why: str


def _unnamed(portid: int) -> Unnamed:
    if 0 < portid < 1 << 22:
        return Unnamed(portid, "gone", f"no socket holds port {portid} and no process "
                                       f"{portid} exists: the sender closed it or exited "
                                       "before the message was read")
    return Unnamed(portid, "gone", f"no socket holds port {portid}: the sender closed it or "
                                   "exited before the message was read")


_KERNEL = Unnamed(0, "kernel", "nlmsg_pid 0: the kernel's own message, no process asked for it")


def _read(path: str) -> str | None:
    """A /proc file's text (bytes that are not UTF-8, as a command line may hold, read as
    U+FFFD); None when it cannot be read. (os.read: a third cheaper than open().)"""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        parts = []
        while chunk := os.read(fd, 65536):
            parts.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(parts).decode("utf-8", "replace")


def comm_of(pid: int, proc: str = "/proc") -> str | None:
    """The command name of ``pid``; None once it is gone."""
    c = _read(f"{proc}/{pid}/comm")
    return c.strip() if c is not None else None


def pids_of(proc: str = "/proc") -> list[int]:
    """Every process id under ``proc`` (empty when it cannot be read)."""
    try:
        return [int(d) for d in os.listdir(proc) if d.isdigit()]
    except OSError:
        return []


def socket_fds(proc: str = "/proc", pids: Iterable[int] | None = None,
               newest_first: bool = False) -> Iterator[tuple[int, int, int]]:
    """(pid, fd, socket inode) of every socket the processes (default: all) hold open;
    ``newest_first``: highest pids first (a change's sender has usually just started,
    and may be about to exit)."""
    from rawlab._kernels import fd_sockets  # (the interpreter lock released meanwhile)

    order = pids_of(proc) if pids is None else pids
    for pid in sorted(order, reverse=True) if newest_first else order:
        for fd, inode in fd_sockets(f"{proc}/{pid}/fd") or ():
            yield pid, fd, inode


# a socket's namespace holding at most this many processes has them walked first
NEAR_MOST = 64


class SocketHolders:
    """socket inode -> the (pid, fd) holding it, kept fresh at the cost of a partial walk.

    :meth:`walk` reads every process's fds (once, at start). :meth:`find` checks the
    holders it knows (one readlink each) and, for an inode it does not know, walks the
    processes most likely to hold a new socket first: those it has never seen (a new
    ``curl``), then those that held sockets before, then the rest, stopping at the
    first holder. A socket shared by several processes (after fork) may so be found
    under one of them only.
    """

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self._by_inode: dict[int, list[tuple[int, int]]] = {}
        self._seen: set[int] = set()  # pids walked at least once
        self._active: dict[int, None] = {}  # pids that held sockets, most recent last
        self.walks = 0  # partial or whole walks done (for tests and the summary)

    def walk(self) -> None:
        """Index every socket of every process."""
        pids = pids_of(self.proc)
        self._index(pids, None)
        self._seen.update(pids)

    def _index(self, pids: Iterable[int], want: int | None) -> bool:
        """Index the sockets of `pids`; stop after the pid holding `want` (True then)."""
        self.walks += 1
        found = False
        cur = -1
        for pid, fd, inode in socket_fds(self.proc, pids):
            if found and pid != cur:
                return True
            cur = pid
            holders = self._by_inode.setdefault(inode, [])
            if (pid, fd) not in holders:
                holders.append((pid, fd))
            self._active[pid] = None
            if inode == want:
                found = True
        return found

    def remember(self, inode: int, pid: int, fd: int) -> None:
        """`pid` was seen holding `inode` at `fd` (found elsewhere: checked like the rest
        when asked again)."""
        self._by_inode[inode] = [(pid, fd)]
        self._active[pid] = None

    def _valid(self, inode: int) -> list[tuple[int, int]]:
        from rawlab._kernels import socket_inode  # (one readlink, the lock held)

        got = [(pid, fd) for pid, fd in self._by_inode.get(inode, ())
               if socket_inode(f"{self.proc}/{pid}/fd/{fd}") == inode]
        if got:
            self._by_inode[inode] = got
        else:
            self._by_inode.pop(inode, None)
        return got

    def find(self, inode: int, hints: Iterable[tuple[int, int]] = (),
             alive: Callable[[], bool] | None = None,
             near: Collection[int] = ()) -> list[tuple[int, int]]:
        """The (pid, fd) pairs holding `inode` now; [] when no process holds it.

        `hints`: (pid, fd) of the last sockets like this one: that fd is read first (a
        process that closes a socket and makes the next gets the same number back), then
        those processes' fds. `near`: the processes that were in the socket's network
        namespace when the caller last looked, walked next when they are few (at most
        ``NEAR_MOST``: a container's, a lab namespace's; not the host's hundreds), so
        that the first socket of a client that holds each one for a millisecond is found
        before it closes. Then the processes never seen before (a client started since:
        curl), the five that held sockets last, the others that did, the rest, and
        rawlab's own process last. `alive` is asked before each group after the hints'
        fds; none is walked once it says the socket is gone (its process closed it)."""
        got = self._valid(inode)
        if got:
            return got
        from rawlab._kernels import socket_inode

        own = os.getpid()  # rawlab's own sockets (one or two per namespace) come last
        for pid, fd in hints:
            if socket_inode(f"{self.proc}/{pid}/fd/{fd}") == inode:
                self._by_inode[inode] = [(pid, fd)]
                return [(pid, fd)]
        hints = list(dict.fromkeys(pid for pid, _fd in hints))
        if hints and self._index(hints, inode):
            return self._valid(inode)
        if alive is not None and not alive():
            return []
        close_by = [p for p in near if p not in hints and p != own] \
            if 0 < len(near) <= NEAR_MOST else []
        if close_by:
            if self._index(close_by, inode):
                return self._valid(inode)
            if alive is not None and not alive():
                return []
            hints = [*hints, *close_by]
        pids = pids_of(self.proc)
        living = set(pids)
        for p in [p for p in self._active if p not in living]:
            del self._active[p]
        skip = {*hints, own}
        new = [p for p in pids if p not in self._seen and p not in skip]
        self._seen.update(new)
        skip.update(new)
        recent = [p for p in list(self._active)[-5:][::-1] if p not in skip]
        skip.update(recent)
        active = [p for p in reversed(self._active) if p not in skip]
        rest = [p for p in pids if p not in self._active and p not in skip]
        asked = True  # (alive() was just asked)
        for group in (new, recent, active, rest, [own]):
            if not group:
                continue
            if not asked and alive is not None and not alive():
                return []
            asked = False
            if self._index(group, inode):
                return self._valid(inode)
        return []


@dataclass(frozen=True, slots=True)
class ProcessFacts:
    """What /proc says of one process (host pid namespace)."""

    pid: int
    comm: str
    cmdline: tuple[str, ...]
    uid: int | None  # real uid
    cgroup: str  # see cgroup_path
    container: str | None
    threads: int
    start: int  # start time in clock ticks since boot: tells a reused pid apart


def _stat_start(proc: str, pid: int) -> int | None:
    return _start_of(_read(f"{proc}/{pid}/stat"))


def _start_of(stat: str | None) -> int | None:
    if stat is None:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def process_facts(pid: int, proc: str = "/proc",
                  cache: dict[int, ProcessFacts] | None = None) -> ProcessFacts | None:
    """comm, command line, uid, cgroup and container of `pid`; None once it is gone.

    With `cache`, a pid seen before is read again only when its start time changed
    (the pid was reused)."""
    start = _stat_start(proc, pid)
    if start is None:
        return None
    if cache is not None:
        hit = cache.get(pid)
        if hit is not None and hit.start == start:
            return hit
    comm = _read(f"{proc}/{pid}/comm")
    raw = _read(f"{proc}/{pid}/cmdline")
    if comm is None or raw is None:
        return None
    try:
        threads = len(os.listdir(f"{proc}/{pid}/task"))
    except OSError:
        threads = 0
    facts = _facts(pid, start, comm, raw, _read(f"{proc}/{pid}/status") or "",
                   _read(f"{proc}/{pid}/cgroup") or "", threads)
    if cache is not None:
        cache[pid] = facts
    return facts


def facts_from(pid: int, stat: bytes, comm: bytes, cmdline: bytes, status: bytes,
               cgroup: bytes, threads: int) -> ProcessFacts | None:
    """:func:`process_facts` of the files' bytes as read then (the SYN watch's thread
    reads them the moment it finds a new process holding a socket: rawlab._syn_watch);
    None when they are not a process's."""
    start = _start_of(stat.decode("utf-8", "replace"))
    if start is None:
        return None
    return _facts(pid, start, comm.decode("utf-8", "replace"),
                  cmdline.decode("utf-8", "replace"), status.decode("utf-8", "replace"),
                  cgroup.decode("utf-8", "replace"), threads)


def _facts(pid: int, start: int, comm: str, raw: str, status: str, lines: str,
           threads: int) -> ProcessFacts:
    uid = None
    for line in status.splitlines():
        if line.startswith("Uid:"):
            uid = int(line.split()[1])
            break
    return ProcessFacts(pid, comm.strip(), tuple(raw.split("\0")[:-1]) if raw else (), uid,
                        cgroup_path(lines), container_id(lines), threads, start)


_EXITED = -1  # (FactsCache: in place of the pidfd of a process exited before it was kept)


class FactsCache:
    """:func:`process_facts` by pid, kept: a pid asked again is the same process while
    the pidfd opened when it was read says that process still lives (one system call;
    a reused pid is another process, which that pidfd does not name), else while its
    start time is the same (a /proc root that is not the machine's, or no pidfd).
    `most` processes at most, the least recently asked forgotten first."""

    def __init__(self, proc: str = "/proc", most: int = 256) -> None:
        from collections import OrderedDict

        self.proc, self.most = proc, most
        self._facts: OrderedDict[int, tuple[ProcessFacts, int | None]] = OrderedDict()

    def get(self, pid: int, lived: bool = False) -> ProcessFacts | None:
        """`lived`: the process kept for `pid` is known to have lived at the moment the
        caller asks about (a pidfd opened when its facts were read said so then): they
        are given even if it has exited since."""
        hit = self._facts.get(pid)
        got = None
        if hit is not None:
            facts, pidfd = hit
            if pidfd == _EXITED and lived:  # (the process that lived then is this one)
                self._facts.move_to_end(pid)
                return facts
            if pidfd is not None and pidfd != _EXITED and (lived or _lives(pidfd)):
                self._facts.move_to_end(pid)
                return facts
            if pidfd is None:
                got = process_facts(pid, self.proc, {pid: facts})
                if got is facts:
                    self._facts.move_to_end(pid)
                    return facts
            self._forget(pid)
        if got is None:
            got = process_facts(pid, self.proc)
        if got is not None:
            self._keep(got)
        return got

    def keep(self, facts: ProcessFacts) -> None:
        """Facts read elsewhere (:func:`facts_from`, by the SYN watch's thread while the
        process held a socket), kept; when that process has exited since, kept as its
        last: given only to a caller that knows the process it asks about lived then
        (``lived``), which a pid's next process cannot be before the pid wraps around."""
        hit = self._facts.get(facts.pid)
        if hit is not None and (hit[1] == _EXITED or hit[0].start != facts.start):
            self._forget(facts.pid)  # (that pid's process before: these are another's)
            hit = None
        if hit is None:
            self._keep(facts, read_alive=True)

    def _keep(self, facts: ProcessFacts, *, read_alive: bool = False) -> None:
        pidfd: int | None = None
        if self.proc == "/proc" and hasattr(os, "pidfd_open"):
            try:
                pidfd = os.pidfd_open(facts.pid)
            except ProcessLookupError:
                pidfd = _EXITED if read_alive else None
            except OSError:
                pidfd = None
            # the pid's process when the pidfd was opened is the one that was read
            if pidfd is not None and pidfd != _EXITED \
                    and _stat_start(self.proc, facts.pid) != facts.start:
                os.close(pidfd)
                return
        self._facts[facts.pid] = (facts, pidfd)
        while len(self._facts) > self.most:
            self._forget(next(iter(self._facts)))

    def _forget(self, pid: int) -> None:
        _facts, pidfd = self._facts.pop(pid)
        if pidfd is not None and pidfd != _EXITED:
            os.close(pidfd)

    def close(self) -> None:
        for pid in list(self._facts):
            self._forget(pid)


def _lives(pidfd: int) -> bool:
    """Whether the process a pidfd names has not been reaped (signal 0: nothing sent)."""
    import signal

    try:
        signal.pidfd_send_signal(pidfd, 0)
    except PermissionError:
        return True  # it lives: another user's
    except OSError:
        return False
    return True


def cgroup_paths(text: str) -> list[tuple[str, str]]:
    """/proc/PID/cgroup -> [(hierarchy, path)]: "0" for cgroup v2, else the controllers
    (``cpu,cpuacct``, ``name=systemd``)."""
    out = []
    for line in text.splitlines():
        hid, _, rest = line.partition(":")
        ctrl, _, path = rest.partition(":")
        if path:
            out.append(("0" if hid == "0" and not ctrl else ctrl, path))
    return out


def cgroup_path(text: str) -> str:
    """The process's cgroup: the v2 path, unless that is "/" on a hybrid system where a
    v1 hierarchy (``name=systemd`` first) places it deeper."""
    paths = cgroup_paths(text)
    v2 = next((p for h, p in paths if h == "0"), None)
    if v2 is not None and v2 != "/":
        return v2
    for want in ("name=systemd", None):
        for h, p in paths:
            if h != "0" and p != "/" and (want is None or h == want):
                return p
    return v2 or "/"


# container runtimes' cgroup names: docker-<id>.scope, cri-containerd-<id>.scope,
# crio-<id>.scope, libpod-<id>.scope, /docker/<id>, /kubepods/.../<id>, /lxc/<name>
_CONTAINER = re.compile(r"(?:^|[/-])([0-9a-f]{64})(?:\.scope)?(?:/|$)")
_LXC = re.compile(r"/lxc(?:\.payload)?[./]([^/]+)")


def container_id(text: str) -> str | None:
    """The container id a cgroup path (or a whole /proc/PID/cgroup) names, if any: the
    64-hex id of docker, containerd, CRI-O and podman, or an LXC container's name."""
    for path in [p for _h, p in cgroup_paths(text)] or [text]:
        m = _CONTAINER.search(path)
        if m:
            return m.group(1)
        m = _LXC.search(path)
        if m:
            return m.group(1)
    return None


def cgroup_by_id(cgroup_id: int, root: str = "/sys/fs/cgroup") -> str | None:
    """The cgroup v2 path whose id (its directory's inode) is `cgroup_id`, or None.

    A socket keeps the id of its creator's cgroup (INET_DIAG_CGROUP_ID); on a hybrid
    system the v2 hierarchy is mounted at ``root``/unified."""
    for base in (root, f"{root}/unified"):
        if not os.path.exists(f"{base}/cgroup.controllers"):  # not a cgroup2 mount
            continue
        for top, _dirs, _files in os.walk(base):
            try:
                if os.stat(top).st_ino == cgroup_id:
                    return top[len(base):] or "/"
            except OSError:
                continue
    return None


def net_namespaces(proc: str = "/proc", run: str = "/run/netns",
                   members: dict[int, list[int]] | None = None) -> dict[int, str]:
    """{network namespace inode: a path that enters it} of every process and every
    named namespace (named ones keep their /run/netns path). `members`, when given, is
    filled with {namespace inode: the pids in it}."""
    out: dict[int, str] = {}
    try:
        names = sorted(os.listdir(run))
    except OSError:
        names = []
    for name in names:
        try:
            out.setdefault(os.stat(f"{run}/{name}").st_ino, f"{run}/{name}")
        except OSError:
            continue
    for pid in pids_of(proc):
        try:
            link = os.readlink(f"{proc}/{pid}/ns/net")
        except OSError:
            continue
        if link.startswith("net:["):
            inode = int(link[5:-1])
            out.setdefault(inode, f"{proc}/{pid}/ns/net")
            if members is not None:
                members.setdefault(inode, []).append(pid)
    return out


def inode_owners(proc: str = "/proc") -> dict[int, list[Owner]]:
    """socket inode -> every (pid, command, fd) holding it."""
    out: dict[int, list[Owner]] = {}
    comms: dict[int, str] = {}
    for pid, fd, inode in socket_fds(proc):
        comm = comms.get(pid)
        if comm is None:
            comm = comms[pid] = comm_of(pid, proc) or "?"
        out.setdefault(inode, []).append(Owner(pid, comm, fd))
    return out


def parse_proc_net_inet(text: str) -> list[tuple[bytes, int, bytes, int, int, int]]:
    """/proc/net/{raw,icmp,tcp,udp}[6] -> [(local address, local port, remote address,
    remote port, uid, inode)]: the kernel prints each 32-bit word of an address as the
    machine's byte order reads it. A raw socket's "port" is its protocol; a ping socket's,
    its echo identifier."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 10:
            continue
        try:
            (la, lp), (ra, rp) = (x.split(":") for x in f[1:3])
            local = b"".join(int(la[i:i + 8], 16).to_bytes(4, sys.byteorder)
                             for i in range(0, len(la), 8))
            remote = b"".join(int(ra[i:i + 8], 16).to_bytes(4, sys.byteorder)
                              for i in range(0, len(ra), 8))
            out.append((local, int(lp, 16), remote, int(rp, 16), int(f[7]), int(f[9])))
        except ValueError:
            continue
    return out


def parse_proc_net_netlink(text: str) -> dict[tuple[int, int], int]:
    """/proc/net/netlink -> {(protocol, port id): socket inode}."""
    out: dict[tuple[int, int], int] = {}
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) >= 10:
            try:
                out[(int(f[1]), int(f[2]) & 0xFFFFFFFF)] = int(f[9])
            except ValueError:
                continue
    return out


class PortOwners:
    """nlmsg_pid -> the process that holds the sending netlink socket (cached briefly).

    ``proc`` is the /proc root; ``net`` the file listing this namespace's
    netlink sockets (``/proc/net/netlink`` of the namespace the reader entered;
    a socket's namespace is fixed when it opens, so a monitor that entered a
    namespace reads the file after entering it).

    :meth:`at_receipt` is what a monitor's reading thread calls on each datagram,
    as soon as the kernel hands it over: the sender is looked up then (while it
    most likely still runs), and the answer travels with the datagram, so two
    monitors name the same event alike however far behind their decoding is.
    With ``exits`` (:class:`TaskExits`), a sender that exited before its message
    was read is still named when its port id is its pid (as `ip`, `nft`, pyroute2
    and libnl bind their first socket), by the kernel's own exit record: two
    monitors then agree on who it was.
    """

    def __init__(self, proc: str = "/proc", net: str = "/proc/thread-self/net/netlink",
                 ttl: float = 0.1, exits: TaskExits | None = None) -> None:
        self.proc = proc
        self.net = net
        self.ttl = ttl
        self.exits = exits  # names of processes that exited (TASKSTATS)
        self._cache: dict[tuple[int, int], tuple[float, Process | Unnamed]] = {}

    def lookup(self, portid: int, protocol: int = 0) -> Process | None:
        """The process behind ``portid``, or None (the kernel, or the sender is gone)."""
        who = self.attribute(portid, protocol)
        return who if isinstance(who, Process) else None

    def attribute(self, portid: int, protocol: int = 0) -> Process | Unnamed:
        """The process behind ``portid``, or why there is none (looked up now, or within
        the last ``ttl`` seconds)."""
        if portid == 0:
            return _KERNEL
        now = time.monotonic()
        key = (portid, protocol)
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        if len(self._cache) > 4096:
            self._cache.clear()
        who = self._resolve(portid, protocol) or _unnamed(portid)
        self._cache[key] = (now, who)
        return who

    def at_receipt(self, data: bytes, protocol: int = 0) -> Any:
        """The senders of one datagram's messages: the first message's answer, or
        ``{nlmsg_pid: answer}`` when its messages come from several ports."""
        n = len(data)
        if n < 16:
            return None
        first = int.from_bytes(data[12:16], sys.byteorder)
        length = int.from_bytes(data[0:4], sys.byteorder)
        if length >= n - 3 or length < 16:  # one message (the common case)
            return self.attribute(first, protocol)
        out: dict[int, Process | Unnamed] = {}
        off = 0
        while off + 16 <= n:
            length = int.from_bytes(data[off:off + 4], sys.byteorder)
            pid = int.from_bytes(data[off + 12:off + 16], sys.byteorder)
            if pid not in out:
                out[pid] = self.attribute(pid, protocol)
            if length < 16:
                break
            off += (length + 3) & ~3
        return out[first] if len(out) == 1 else out

    def _resolve(self, portid: int, protocol: int) -> Process | None:
        # the first socket of a process gets its pid as port id (libnl: pid + n << 22):
        # read that process's name first, before it can exit, then check who holds the port
        pid = portid & (1 << 22) - 1
        early = comm_of(pid, self.proc) if pid else None
        inode = parse_proc_net_netlink(_read(self.net) or "").get((protocol, portid))
        if inode:
            for pids in ([pid] if early else [], None):
                for owner, _fd, ino in socket_fds(self.proc, pids, newest_first=True):
                    if ino == inode:
                        comm = early if owner == pid else comm_of(owner, self.proc)
                        if comm is not None:
                            return Process(owner, comm, "socket")
        if early is None and pid and self.exits is not None:
            early = self.exits.name(pid)  # it exited: as the kernel named it then
        return Process(pid, early, "pid") if early is not None else None


# ---- socket counts (`ss -s`) ---------------------------------------------------------------

def sockstat(net: str = "/proc/thread-self/net") -> dict[str, int]:
    """The counters `ss -s` reads: /proc/net/sockstat and sockstat6 (``TCP.inuse``,
    ``TCP6.inuse``, ``sockets.used`` ...) and /proc/net/snmp's ``Tcp.CurrEstab``."""
    out: dict[str, int] = {}
    for name in ("sockstat", "sockstat6"):
        for line in (_read(f"{net}/{name}") or "").splitlines():
            head, _, rest = line.partition(":")
            words = rest.split()
            for key, value in zip(words[::2], words[1::2], strict=False):
                if value.lstrip("-").isdigit():
                    out[f"{head}.{key}"] = int(value)
    snmp = [line.split() for line in (_read(f"{net}/snmp") or "").splitlines()
            if line.startswith("Tcp:")]
    if len(snmp) == 2 and "CurrEstab" in snmp[0]:
        out["Tcp.CurrEstab"] = int(snmp[1][snmp[0].index("CurrEstab")])
    return out


# ---- the names of processes that exited (taskstats) -------------------------------------

GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
TASKSTATS_CMD_GET = 1
TASKSTATS_CMD_ATTR_REGISTER_CPUMASK = 3
TASKSTATS_TYPE_PID = 1
TASKSTATS_TYPE_TGID = 2
TASKSTATS_TYPE_STATS = 3
AC_COMM = slice(80, 112)  # struct taskstats: char ac_comm[32] (every version since 1)
AC_PPID = 132  # struct taskstats: __u32 ac_ppid


class TaskExits:
    """The name of every process that exits from now on, as the kernel reports it (the
    generic netlink family TASKSTATS, listening on every CPU: what `getdelays -m` does).

    The kernel sends a task's record when it exits, before its /proc entry goes
    away; so once a pid has vanished from /proc, its record is already queued here,
    and :meth:`name` reads the queue first: a process that sent a netlink message
    and exited before it could be looked up is named by the kernel, the same for
    every reader. TASKSTATS lives in the initial network namespace: open this
    before entering another. :meth:`open` returns None where it cannot listen.
    """

    def __init__(self, sock: Any, keep: int = 65536) -> None:
        self.sock = sock
        self.keep = keep
        self.names: dict[int, str] = {}
        self.parents: dict[int, int] = {}  # pid -> its parent's, for those that exited

    @classmethod
    def open(cls, rcvbuf: int = 16 << 20) -> TaskExits | None:
        import socket
        import struct

        from rawlab.sockets.netlink_wire import (
            NLM_F_ACK,
            NLM_F_REQUEST,
            attr_map,
            messages,
            nlattr,
            nlmsg,
        )

        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)  # NETLINK_GENERIC
        except OSError:
            return None
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.bind((0, 0))
            hdr = struct.pack("=BBH", CTRL_CMD_GETFAMILY, 1, 0)
            sock.send(nlmsg(GENL_ID_CTRL, NLM_F_REQUEST, 1, 0,
                            hdr + nlattr(CTRL_ATTR_FAMILY_NAME, b"TASKSTATS\0")))
            reply = next(messages(sock.recv(1 << 16)), None)
            fid = attr_map(reply.payload, 4).get(CTRL_ATTR_FAMILY_ID) if reply else None
            if not fid or reply is None or reply.error:
                sock.close()
                return None
            cpus = f"0-{(os.cpu_count() or 1) - 1}\0".encode()
            body = struct.pack("=BBH", TASKSTATS_CMD_GET, 1, 0)
            sock.send(nlmsg(int.from_bytes(fid[:2], sys.byteorder), NLM_F_REQUEST | NLM_F_ACK,
                            2, 0, body + nlattr(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, cpus)))
            ack = next(messages(sock.recv(1 << 16)), None)
            if ack is None or ack.error:
                sock.close()
                return None
            sock.setblocking(False)
        except OSError:
            sock.close()
            return None
        return cls(sock)

    def name(self, pid: int) -> str | None:
        """The name ``pid`` had when it exited (None: it has not exited while we listened)."""
        self._read()
        return self.names.get(pid)

    def children(self, pids: set[int]) -> set[int]:
        """Processes that exited while we listened whose parent is one of ``pids``."""
        self._read()
        return {pid for pid, ppid in self.parents.items() if ppid in pids}

    def _read(self) -> None:
        from rawlab.sockets.netlink_wire import attr_items, messages

        names = self.names
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # records lost; go on with the next ones
                    continue
                break  # closed, or broken: nothing more to read (never a busy loop)
            for m in messages(data):
                for _agg, nested in attr_items(m.payload, 4):
                    pid, comm, ppid = None, None, None
                    for t, v in attr_items(nested):
                        if t in (TASKSTATS_TYPE_PID, TASKSTATS_TYPE_TGID) and len(v) >= 4:
                            pid = int.from_bytes(v[:4], sys.byteorder)
                        elif t == TASKSTATS_TYPE_STATS:
                            comm = v[AC_COMM].partition(b"\0")[0].decode("utf-8", "replace")
                            if len(v) >= AC_PPID + 4:
                                ppid = int.from_bytes(v[AC_PPID:AC_PPID + 4], sys.byteorder)
                    if pid and comm:
                        names[pid] = comm
                        if ppid:
                            self.parents[pid] = ppid
        if len(names) > self.keep:
            for pid in list(names)[: self.keep // 4]:  # the oldest quarter
                del names[pid]
                self.parents.pop(pid, None)

    def close(self) -> None:
        self.sock.close()
