"""Which process holds a socket: /proc/*/fd links, /proc/PID/comm, /proc/net/netlink.

    inode_owners()                 # {socket inode: [Owner(pid, comm, fd), ...]} (ss -p)
    PortOwners().lookup(portid)    # the process behind a netlink port id (nlmsg_pid)
    holders = SocketHolders(); holders.walk()      # one walk at start, then
    holders.find(inode)            # [(pid, fd)]: checked, or found by a partial walk
    process_facts(pid)             # ProcessFacts: comm, cmdline, uid, cgroup, threads
    net_namespaces()               # {netns inode: a path to enter it} of every process

Everything here is given its ``/proc`` root, so tests build a fake one.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple


class Owner(NamedTuple):
    pid: int
    comm: str
    fd: int


@dataclass(frozen=True, slots=True)
class Process:
    pid: int
    comm: str
    how: str  # "socket": holds that netlink socket; "pid": only its pid equals the port id


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


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


def socket_fds(proc: str = "/proc", pids: Iterable[int] | None = None
               ) -> Iterator[tuple[int, int, int]]:
    """(pid, fd, socket inode) of every socket the processes (default: all) hold open."""
    readlink = os.readlink
    for pid in pids_of(proc) if pids is None else pids:
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                link = readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                yield pid, int(fd), int(link[8:-1])


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

    def _valid(self, inode: int) -> list[tuple[int, int]]:
        link = f"socket:[{inode}]"
        got = []
        for pid, fd in self._by_inode.get(inode, ()):
            try:
                if os.readlink(f"{self.proc}/{pid}/fd/{fd}") == link:
                    got.append((pid, fd))
            except OSError:
                pass
        if got:
            self._by_inode[inode] = got
        else:
            self._by_inode.pop(inode, None)
        return got

    def find(self, inode: int) -> list[tuple[int, int]]:
        """The (pid, fd) pairs holding `inode` now; [] when no process holds it."""
        got = self._valid(inode)
        if got:
            return got
        recent = list(self._active)[-4:][::-1]  # the last processes that made sockets
        if recent and self._index(recent, inode):
            return self._valid(inode)
        pids = pids_of(self.proc)
        new = [p for p in pids if p not in self._seen]
        self._seen.update(new)
        alive = set(pids)
        for p in [p for p in self._active if p not in alive]:
            del self._active[p]
        active = [p for p in reversed(self._active) if p not in recent]
        rest = [p for p in pids if p not in self._active and p not in new]
        for group in (new, active, rest):
            if group and self._index(group, inode):
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
    stat = _read(f"{proc}/{pid}/stat")
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
    comm = comm_of(pid, proc)
    raw = _read(f"{proc}/{pid}/cmdline")
    if comm is None or raw is None:
        return None
    uid = None
    for line in (_read(f"{proc}/{pid}/status") or "").splitlines():
        if line.startswith("Uid:"):
            uid = int(line.split()[1])
            break
    lines = _read(f"{proc}/{pid}/cgroup") or ""
    try:
        threads = len(os.listdir(f"{proc}/{pid}/task"))
    except OSError:
        threads = 0
    facts = ProcessFacts(pid, comm, tuple(raw.split("\0")[:-1]) if raw else (), uid,
                         cgroup_path(lines), container_id(lines), threads, start)
    if cache is not None:
        cache[pid] = facts
    return facts


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


def net_namespaces(proc: str = "/proc", run: str = "/run/netns") -> dict[int, str]:
    """{network namespace inode: a path that enters it} of every process and every
    named namespace (named ones keep their /run/netns path)."""
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
            out.setdefault(int(link[5:-1]), f"{proc}/{pid}/ns/net")
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
    netlink sockets (``/proc/thread-self/net/netlink`` from the monitor's thread).
    """

    def __init__(self, proc: str = "/proc", net: str = "/proc/thread-self/net/netlink",
                 ttl: float = 2.0) -> None:
        self.proc = proc
        self.net = net
        self.ttl = ttl
        self._cache: dict[int, tuple[float, Process | None]] = {}

    def lookup(self, portid: int, protocol: int = 0) -> Process | None:
        if portid == 0:
            return None
        now = time.monotonic()
        hit = self._cache.get(portid)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        proc = self._resolve(portid, protocol)
        self._cache[portid] = (now, proc)
        return proc

    def _resolve(self, portid: int, protocol: int) -> Process | None:
        inode = parse_proc_net_netlink(_read(self.net) or "").get((protocol, portid))
        if inode:
            for pid, _fd, ino in socket_fds(self.proc):
                if ino == inode and (comm := comm_of(pid, self.proc)) is not None:
                    return Process(pid, comm, "socket")
        if 0 < portid < 1 << 22:  # the first socket of a process gets its pid as port id
            comm = comm_of(portid, self.proc)
            if comm is not None:
                return Process(portid, comm, "pid")
        return None
