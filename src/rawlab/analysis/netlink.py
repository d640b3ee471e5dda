"""The netlink monitor's bookkeeping: events in order, overflows, re-dumps and their diff.

    mon = Monitor(kinds={"link", "route"}, owner=PortOwners().lookup)
    mon.seed("route", dumped_msgs)            # the state before the first event
    for ev in mon.feed(item):                 # rawlab.sockets.netlink_monitor: Datagram,
        ...                                   # Overflow, Redump -> Event, OverflowEvent,
                                              # Change("added"|"removed"|"changed", ...)

Sans-I/O (design principle 10): the monitor session (rawlab.sockets.netlink_monitor)
reads the socket and runs the dumps; ``owner`` (nlmsg_pid -> process, e.g.
rawlab.sockets.proc.PortOwners.lookup) is given. Each object kind keeps a table
keyed as the kernel identifies the object (a link by index, an address by
family/index/prefix/address, a route by family/table/destination/tos/metric ...).
After an overflow, what the re-dump shows against that table is exactly what the
lost events changed.

Limits: the table follows this namespace only; events of other namespaces
(``--all-nsid``) lost in an overflow are counted but cannot be re-dumped.
Attributes that move by themselves (statistics, cache info) are not compared.

The end of this module is wiring, not analysis: :func:`dump_messages` runs a
dump on the socket it is given and decodes it; :func:`wait_vsock_listening`
polls vsock_diag. The monitor above does no I/O.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from rawlab.decode.rtnl import decode_buffer, decode_dump, dump_filter
from rawlab.sockets.netlink_monitor import Datagram, Overflow, Redump, ancillary
from rawlab.sockets.netlink_wire import NETLINK_NETFILTER, NETLINK_ROUTE, NlMsg

# message type -> object kind, and whether it removes the object
KIND_OF: dict[int, str] = {16: "link", 17: "link", 20: "addr", 21: "addr", 24: "route",
                           25: "route", 28: "neigh", 29: "neigh", 32: "rule", 33: "rule",
                           88: "nsid", 89: "nsid"}
DELETES = frozenset({17, 21, 25, 29, 33, 89})
# the dump that refreshes each kind (rawlab.sockets.netlink.dump_request names), and back
DUMP_OF = {"link": "links", "addr": "addrs", "route": "routes", "neigh": "neigh",
           "rule": "rules", "nsid": "nsid"}
KIND_OF_DUMP = {dump: kind for kind, dump in DUMP_OF.items()}
# monitor group -> object kinds it carries
KINDS_OF_GROUP = {"link": ("link",), "addr": ("addr",), "addr4": ("addr",),
                  "addr6": ("addr",), "route": ("route",), "route4": ("route",),
                  "route6": ("route",), "neigh": ("neigh",), "rule": ("rule",),
                  "rule4": ("rule",), "rule6": ("rule",), "nsid": ("nsid",)}
VOLATILE = frozenset({"IFLA_STATS", "IFLA_STATS64", "IFLA_AF_SPEC", "IFLA_CARRIER_CHANGES",
                      "IFLA_CARRIER_UP_COUNT", "IFLA_CARRIER_DOWN_COUNT", "IFLA_XDP",
                      "IFA_CACHEINFO", "NDA_CACHEINFO", "RTA_CACHEINFO", "NDA_PROBES",
                      "IFLA_PROTINFO"})

NFT_SUBSYS = 10  # nfnetlink's nftables subsystem
NFT_MSG_NEWGEN = NFT_SUBSYS << 8 | 15
Owner = Callable[[int], Any]  # nlmsg_pid -> the process behind it, or why there is none


def kinds_of(groups: Iterable[str]) -> list[str]:
    """The object kinds (with tables) that these monitor groups carry, sorted."""
    return sorted({k for g in groups for k in KINDS_OF_GROUP.get(g, ())})


@dataclass(slots=True)
class Event:
    """One message as the monitor reports it."""

    msg: NlMsg
    ts_ns: int
    nsid: int | None  # with --all-nsid: the namespace id the event came from
    group: int | None  # the multicast group it was sent to (NETLINK_PKTINFO)
    n: int  # running number of the event
    resynced: bool = False  # a re-dump already reported this state (it was in flight)
    process: Any = None  # who sent it (the ``owner`` lookup's answer), if known


@dataclass(slots=True)
class OverflowEvent:
    ts_ns: int
    count: int  # overflows so far
    resync: tuple[str, ...]  # kinds that will be re-dumped
    protocol: int = NETLINK_ROUTE  # the netlink family of the socket that overflowed


@dataclass(slots=True)
class Change:
    """What a re-dump showed against the table: the events an overflow swallowed."""

    kind: str
    what: str  # "added" | "removed" | "changed"
    msg: NlMsg  # the object now (the last known one, for "removed")
    before: NlMsg | None = None  # for "changed"


def _hdr(m: NlMsg, name: str, default: int = 0) -> int:
    return m.header.get(name, default)


def object_key(m: NlMsg) -> tuple[Any, ...] | None:
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


def same_object(x: NlMsg, y: NlMsg) -> bool:
    """Equal as the dump shows them (moving counters ignored)."""
    if {k: v for k, v in x.header.items() if k != "change"} != \
            {k: v for k, v in y.header.items() if k != "change"}:
        return False
    ka = {k: v for k, v in x.attrs.items() if k not in VOLATILE}
    kb = {k: v for k, v in y.attrs.items() if k not in VOLATILE}
    return ka == kb


class Monitor:
    """Turns drained datagrams into events; keeps the tables an overflow is diffed against.

    ``ifnames`` follows the links (from :meth:`name_links` and link events) for
    the text output's device names.
    """

    def __init__(self, kinds: Iterable[str] = (), owner: Owner | None = None,
                 genl: Mapping[int, str] | None = None) -> None:
        self.kinds = frozenset(kinds)
        self.owner = owner
        self.genl = genl  # generic netlink family ids -> names (rawlab.decode.genl.GenlIds)
        self.ifnames: dict[int, str] = {}
        self.tables: dict[str, dict[tuple[Any, ...], NlMsg]] = {k: {} for k in self.kinds}
        self.events = 0
        self.overflows = 0
        self.resync_needed: set[str] = set()
        self.changes = {"added": 0, "removed": 0, "changed": 0}
        self._resynced: set[tuple[Any, ...]] = set()  # keys a re-dump reported
        self._held: dict[int, list[Event]] = {}  # nftables events waiting for their generation

    def seed(self, kind: str, msgs: Iterable[NlMsg]) -> None:
        """The table before the first event (from a dump)."""
        table = self.tables.setdefault(kind, {})
        for m in msgs:
            key = object_key(m)
            if key is not None:
                table[key] = m
        if kind == "link":
            self.name_links(table.values())

    def name_links(self, msgs: Iterable[NlMsg]) -> None:
        """Learn interface names from link messages (a dump or events)."""
        for m in msgs:
            if m.type == 16:
                self.ifnames[m.header.get("index", 0)] = m.attrs.get("IFLA_IFNAME", "")

    def _apply(self, m: NlMsg) -> bool:
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

    def feed(self, item: Datagram | Overflow | Redump) -> list[Event | OverflowEvent | Change]:
        """Events for one drained item: every message of a datagram, in order; an
        overflow; what a re-dump changed."""
        if isinstance(item, Redump):
            kind = KIND_OF_DUMP.get(item.kind, item.kind)
            return list(self.resync(kind, decode_dump(item.bufs))) if kind in self.tables \
                else []
        if isinstance(item, Overflow):
            self.overflows += 1
            if item.protocol != NETLINK_ROUTE:  # no tables to re-dump: counted, reported
                return [OverflowEvent(item.ts_ns, self.overflows, (), item.protocol)]
            self.resync_needed |= set(self.tables)
            return [OverflowEvent(item.ts_ns, self.overflows, tuple(sorted(self.tables)))]
        nsid, group = ancillary(item.anc) if item.anc else (None, None)
        out: list[Event | OverflowEvent | Change] = []
        route = item.protocol == NETLINK_ROUTE
        for m in decode_buffer(item.data, item.protocol, genl=self.genl):
            self.events += 1
            seen = self._apply(m) if nsid is None and route else False
            if m.type == 16 and nsid is None and route:
                self.name_links((m,))
            ev = Event(m, item.ts_ns, nsid, group, self.events, seen, self._sender(m, item))
            if item.protocol == NETLINK_NETFILTER and m.type >> 8 == NFT_SUBSYS:
                out += self._nft(ev)
            else:
                out.append(ev)
        return out

    def _nft(self, ev: Event) -> list[Event]:
        """nftables changes whose sender exited before they were read wait for their batch's
        generation message, which names the process (NFTA_GEN_PROC_PID / _NAME)."""
        m = ev.msg
        if m.type == NFT_MSG_NEWGEN and isinstance(m.attrs.get("NFTA_GEN_PROC_PID"), int):
            from rawlab.sockets.proc import Process

            who = Process(m.attrs["NFTA_GEN_PROC_PID"],
                          str(m.attrs.get("NFTA_GEN_PROC_NAME", "?")), "generation")
            held = self._held.pop(m.pid, [])
            for h in held:
                h.process = who
            if getattr(ev.process, "how", None) == "gone":
                ev.process = who
            return [*held, ev]
        if getattr(ev.process, "how", None) == "gone":
            self._held.setdefault(m.pid, []).append(ev)
            return []
        return [ev]

    def flush(self) -> list[Event]:
        """Events still waiting for a name (the monitor is ending): as they are."""
        out = sorted((ev for held in self._held.values() for ev in held), key=lambda e: e.n)
        self._held.clear()
        return out

    def _sender(self, m: NlMsg, item: Datagram) -> Any:
        """Who sent ``m``: as looked up when the datagram arrived, else now (``owner``)."""
        got = item.owner
        if type(got) is dict:
            got = got.get(m.pid)
        if got is None and self.owner is not None:
            got = self.owner(m.pid)
        return got

    def resync(self, kind: str, dumped: Iterable[NlMsg]) -> list[Change]:
        """Replace a kind's table with a fresh dump; return what differs (what was missed)."""
        old = self.tables.get(kind, {})
        new: dict[tuple[Any, ...], NlMsg] = {}
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
        if kind == "link":
            self.name_links(new.values())
        self.resync_needed.discard(kind)
        self._resynced.update(object_key(c.msg) or () for c in out)
        for c in out:
            self.changes[c.what] += 1
        return out


# ---- dumps wired to their decoders ----------------------------------------------------

def dump_messages(nl: Any, kind: str, *, family: int = 0, table: int | None = None,
                  ifindex: int | None = None) -> Iterator[NlMsg]:
    """Decoded messages of one dump on ``nl`` (a rawlab.sockets.netlink.DumpSocket),
    filtered as asked, streamed as datagrams arrive."""
    from rawlab.sockets.netlink import dump_buffers

    msgs = decode_dump(dump_buffers(nl, kind, family=family, table=table, ifindex=ifindex))
    wanted = dump_filter(kind, strict=nl.strict, family=family, table=table, ifindex=ifindex)
    return msgs if wanted is None else filter(wanted, msgs)


def wait_vsock_listening(port: int, timeout: float = 30.0) -> bool:
    """Poll vsock_diag until a socket of this machine listens on `port` (any CID).

    For starting a peer (socat, a bench server) and connecting only once it
    listens; False when `timeout` seconds passed first.
    """
    import time

    from rawlab.decode.sock_diag import VsockEnd, sockets_of
    from rawlab.sockets.diag import TCP_LISTEN, collect

    deadline = time.monotonic() + timeout
    while True:
        dumps = collect(["vsock"], [], explicit_states=1 << TCP_LISTEN)
        if any(isinstance(s.local, VsockEnd) and s.local.port == port
               for s in sockets_of(dumps)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
