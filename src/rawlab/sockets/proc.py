"""Which process holds a socket: /proc/*/fd links, /proc/PID/comm, /proc/net/netlink.

    inode_owners()                 # {socket inode: [Owner(pid, comm, fd), ...]} (ss -p)
    PortOwners().lookup(portid)    # the process behind a netlink port id (nlmsg_pid)

Everything here is given its ``/proc`` root, so tests build a fake one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
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


def socket_fds(proc: str = "/proc") -> Iterator[tuple[int, int, int]]:
    """(pid, fd, socket inode) of every socket any process holds open."""
    try:
        pids = [int(d) for d in os.listdir(proc) if d.isdigit()]
    except OSError:
        return
    for pid in pids:
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                yield pid, int(fd), int(link[8:-1])


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
