"""Which process holds a socket: /proc/*/fd links, /proc/PID/comm, /proc/net/netlink.

    inode_owners()                 # {socket inode: [Owner(pid, comm, fd), ...]} (ss -p)
    PortOwners().lookup(portid)    # the process behind a netlink port id (nlmsg_pid)
    PortOwners().attribute(portid) # ... or Unnamed: why there is none (kernel, gone)

Everything here is given its ``/proc`` root, so tests build a fake one.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
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
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def comm_of(pid: int, proc: str = "/proc") -> str | None:
    """The command name of ``pid``; None once it is gone."""
    c = _read(f"{proc}/{pid}/comm")
    return c.strip() if c is not None else None


def socket_fds(proc: str = "/proc", pids: list[int] | None = None,
               newest_first: bool = False) -> Iterator[tuple[int, int, int]]:
    """(pid, fd, socket inode) of every socket any process (or each of ``pids``) holds
    open; ``newest_first``: highest pids first (a change's sender has usually just
    started, and may be about to exit)."""
    if pids is None:
        try:
            pids = [int(d) for d in os.listdir(proc) if d.isdigit()]
        except OSError:
            return
    if newest_first:
        pids = sorted(pids, reverse=True)
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
            except OSError:  # ENOBUFS: records lost; go on with the next ones
                continue
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
