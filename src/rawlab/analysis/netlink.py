"""The netlink monitor's bookkeeping: events in order, overflows, re-dumps and their diff.

    mon = Monitor(kinds={"link", "route"})
    mon.seed("route", dumped_msgs)            # the state before the first event
    for ev in mon.feed(datagram):             # Datagram(ts_ns, data, anc) or Overflow()
        ...                                   # Event(msg, ts_ns, nsid, group, n)
    if mon.resync_needed:                     # after an ENOBUFS overflow
        for kind in mon.resync_needed:
            changes = mon.resync(kind, dumped) # Change("added"|"removed"|"changed", ...)

Sans-I/O (design principle 10): the caller reads the socket and runs the dumps.
Each object kind keeps a table keyed as the kernel identifies the object
(a link by index, an address by family/index/prefix/address, a route by
family/table/destination/tos/metric ...). After an overflow, what the
re-dump shows against that table is exactly what the lost events changed.

Limits: the table follows this namespace only; events of other namespaces
(``--all-nsid``) lost in an overflow are counted but cannot be re-dumped.
Attributes that move by themselves (statistics, cache info) are not compared.

:class:`PortOwners` resolves a notification's ``nlmsg_pid`` (the requester's
netlink port id) to the process holding that socket, reading ``/proc``; it is
the one part here that does I/O, and it is given its ``/proc`` root.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rawlab.decode.rtnl import RtMsg, decode_buffer

SOL_NETLINK = 270
NETLINK_PKTINFO = 3
NETLINK_LISTEN_ALL_NSID = 8

# message type -> object kind, and whether it removes the object
KIND_OF: dict[int, str] = {16: "link", 17: "link", 20: "addr", 21: "addr", 24: "route",
                           25: "route", 28: "neigh", 29: "neigh", 32: "rule", 33: "rule",
                           88: "nsid", 89: "nsid"}
DELETES = frozenset({17, 21, 25, 29, 33, 89})
# the dump that refreshes each kind (rawlab.sockets.netlink.dump_request names)
DUMP_OF = {"link": "links", "addr": "addrs", "route": "routes", "neigh": "neigh",
           "rule": "rules", "nsid": "nsid"}
# monitor group -> object kinds it carries
KINDS_OF_GROUP = {"link": ("link",), "addr": ("addr",), "addr4": ("addr",),
                  "addr6": ("addr",), "route": ("route",), "route4": ("route",),
                  "route6": ("route",), "neigh": ("neigh",), "rule": ("rule",),
                  "rule4": ("rule",), "rule6": ("rule",), "nsid": ("nsid",)}
VOLATILE = frozenset({"IFLA_STATS", "IFLA_STATS64", "IFLA_AF_SPEC", "IFLA_CARRIER_CHANGES",
                      "IFLA_CARRIER_UP_COUNT", "IFLA_CARRIER_DOWN_COUNT", "IFLA_XDP",
                      "IFA_CACHEINFO", "NDA_CACHEINFO", "RTA_CACHEINFO", "NDA_PROBES",
                      "IFLA_PROTINFO"})


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


@dataclass(slots=True)
class Event:
    """One message as the monitor reports it."""

    msg: RtMsg
    ts_ns: int
    nsid: int | None  # with --all-nsid: the namespace id the event came from
    group: int | None  # the multicast group it was sent to (NETLINK_PKTINFO)
    n: int  # running number of the event
    resynced: bool = False  # a re-dump already reported this state (it was in flight)


@dataclass(slots=True)
class OverflowEvent:
    ts_ns: int
    count: int  # overflows so far
    resync: tuple[str, ...]  # kinds that will be re-dumped


@dataclass(slots=True)
class Change:
    """What a re-dump showed against the table: the events an overflow swallowed."""

    kind: str
    what: str  # "added" | "removed" | "changed"
    msg: RtMsg  # the object now (the last known one, for "removed")
    before: RtMsg | None = None  # for "changed"


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


def _hdr(m: RtMsg, name: str, default: int = 0) -> int:
    return m.header.get(name, default)


def object_key(m: RtMsg) -> tuple[Any, ...] | None:
    """How the kernel tells two objects of the same kind apart (None: not an object)."""
    kind = KIND_OF.get(m.type)
    a = m.attrs
    if kind == "link":
        return ("link", _hdr(m, "index"))
    if kind == "addr":
        return ("addr", m.family, _hdr(m, "index"), _hdr(m, "prefixlen"),
                a.get("IFA_LOCAL") or a.get("IFA_ADDRESS"))
    if kind == "route":
        table = a.get("RTA_TABLE", _hdr(m, "table"))
        key: tuple[Any, ...] = ("route", m.family, table, a.get("RTA_DST"), _hdr(m, "dst_len"),
                                a.get("RTA_SRC"), _hdr(m, "src_len"), _hdr(m, "tos"),
                                a.get("RTA_PRIORITY", 0), _hdr(m, "type"))
        if m.family == socket.AF_INET6:
            key += (a.get("RTA_GATEWAY"), a.get("RTA_OIF"))
        return key
    if kind == "neigh":
        return ("neigh", m.family, _hdr(m, "ifindex"), a.get("NDA_DST"))
    if kind == "rule":
        return ("rule", m.family, tuple(m.header.values()),
                tuple(sorted((k, repr(v)) for k, v in a.items())))
    if kind == "nsid":
        return ("nsid", a.get("NETNSA_NSID"))
    return None


def same_object(x: RtMsg, y: RtMsg) -> bool:
    """Equal as the dump shows them (moving counters ignored)."""
    if {k: v for k, v in x.header.items() if k != "change"} != \
            {k: v for k, v in y.header.items() if k != "change"}:
        return False
    ka = {k: v for k, v in x.attrs.items() if k not in VOLATILE}
    kb = {k: v for k, v in y.attrs.items() if k not in VOLATILE}
    return ka == kb


class Monitor:
    """Turns drained datagrams into events; keeps the tables an overflow is diffed against."""

    def __init__(self, kinds: Iterable[str] = ()) -> None:
        self.kinds = frozenset(kinds)
        self.tables: dict[str, dict[tuple[Any, ...], RtMsg]] = {k: {} for k in self.kinds}
        self.events = 0
        self.overflows = 0
        self.resync_needed: set[str] = set()
        self.changes = {"added": 0, "removed": 0, "changed": 0}
        self._resynced: set[tuple[Any, ...]] = set()  # keys a re-dump reported

    def seed(self, kind: str, msgs: Iterable[RtMsg]) -> None:
        """The table before the first event (from a dump)."""
        table = self.tables.setdefault(kind, {})
        for m in msgs:
            key = object_key(m)
            if key is not None:
                table[key] = m

    def _apply(self, m: RtMsg) -> bool:
        """Update the table; True if a re-dump already showed exactly this."""
        kind = KIND_OF.get(m.type)
        if kind is None or kind not in self.tables:
            return False
        key = object_key(m)
        if key is None:
            return False
        table = self.tables[kind]
        seen = False
        if key in self._resynced:
            self._resynced.discard(key)
            old = table.get(key)
            seen = (old is None) if m.type in DELETES else (
                old is not None and same_object(old, m))
        if m.type in DELETES:
            table.pop(key, None)
        else:
            table[key] = m
        return seen

    def feed(self, item: Datagram | Overflow) -> list[Event | OverflowEvent]:
        """Events for one drained item (every message of a datagram, in order)."""
        if isinstance(item, Overflow):
            self.overflows += 1
            self.resync_needed |= set(self.tables)
            return [OverflowEvent(item.ts_ns, self.overflows, tuple(sorted(self.tables)))]
        nsid, group = ancillary(item.anc) if item.anc else (None, None)
        out: list[Event | OverflowEvent] = []
        for m in decode_buffer(item.data):
            self.events += 1
            seen = self._apply(m) if nsid is None else False
            out.append(Event(m, item.ts_ns, nsid, group, self.events, seen))
        return out

    def resync(self, kind: str, dumped: Iterable[RtMsg]) -> list[Change]:
        """Replace a kind's table with a fresh dump; return what differs (what was missed)."""
        old = self.tables.get(kind, {})
        new: dict[tuple[Any, ...], RtMsg] = {}
        for m in dumped:
            key = object_key(m)
            if key is not None:
                new[key] = m
        out: list[Change] = []
        for key, m in new.items():
            prev = old.get(key)
            if prev is None:
                out.append(Change(kind, "added", m))
            elif not same_object(prev, m):
                out.append(Change(kind, "changed", m, prev))
        out.extend(Change(kind, "removed", m) for key, m in old.items() if key not in new)
        self.tables[kind] = new
        self.resync_needed.discard(kind)
        self._resynced.update(object_key(c.msg) or () for c in out)
        for c in out:
            self.changes[c.what] += 1
        return out


# ---- who sent it: nlmsg_pid -> process -----------------------------------------

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


@dataclass(frozen=True, slots=True)
class Process:
    pid: int
    comm: str
    how: str  # "socket": holds that netlink socket; "pid": only its pid equals the port id


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

    def _read(self, path: str) -> str:
        try:
            with open(path) as fh:
                return fh.read()
        except OSError:
            return ""

    def _comm(self, pid: int) -> str | None:
        c = self._read(f"{self.proc}/{pid}/comm")
        return c.strip() if c else None

    def _resolve(self, portid: int, protocol: int) -> Process | None:
        inode = parse_proc_net_netlink(self._read(self.net)).get((protocol, portid))
        if inode:
            target = f"socket:[{inode}]"
            for pid in self._pids():
                fddir = f"{self.proc}/{pid}/fd"
                try:
                    fds = os.listdir(fddir)
                except OSError:
                    continue
                for fd in fds:
                    try:
                        if os.readlink(f"{fddir}/{fd}") == target:
                            comm = self._comm(pid)
                            if comm is not None:
                                return Process(pid, comm, "socket")
                    except OSError:
                        continue
        if 0 < portid < 1 << 22:  # the first socket of a process gets its pid as port id
            comm = self._comm(portid)
            if comm is not None:
                return Process(portid, comm, "pid")
        return None

    def _pids(self) -> list[int]:
        try:
            return [int(d) for d in os.listdir(self.proc) if d.isdigit()]
        except OSError:
            return []
