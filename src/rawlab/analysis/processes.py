"""Who sent it: each frame's TCP/UDP flow (or ICMP echo) attributed to the processes at
its ends, without eBPF (sans I/O: the kernel and /proc are asked through a lookup object).

    attr = Attribution(OwnerLookup(netns), ProcessMatch(pids={1234}))
    keep = attr(rec)        # rec.owners = (source end, destination end); False: filtered out
    attr.counts             # frames attributed / closed before look-up / not attributable

A flow is looked up when it first appears (both ends: an end that is not a socket of
this machine has no owner), again when a TCP SYN starts a connection on a 4-tuple
already known (tuple reuse), while an end is only provisionally known (a listener
stands in until its connection is accepted: asked again every ``retry_ns`` of
capture time), and every ``recheck_ns`` (a UDP socket may give its 4-tuple to
another). In between, a frame costs one compiled call (:class:`rawlab._kernels.
FlowReader`: a dict look-up where the frame lies, none when it is of the flow of the
frame before): the common shapes (Ethernet, Linux
cooked v1/v2; IPv4 without options) are keyed by their raw address and port bytes,
one key per direction. Other shapes (IPv6, VLAN
tags, IP options) take the general walk (:func:`rawlab.decode.descent.walk`).

With a :class:`ProcessMatch`, only flows with an end owned by a matching process are
kept (an end known only provisionally counts by its listener's process).
"""

from __future__ import annotations

import mmap
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rawlab.analysis.tcp.table import canonical
from rawlab.decode.descent import FRAG_LATER, walk
from rawlab.records import CLOSED, PROCESS, LinkType, Owners, Record, SocketOwner

# what a frame is given: (owners or None, keep it, its category)
Entry = tuple[Owners | None, bool, int]
Buffer = bytes | bytearray | memoryview | mmap.mmap

# frame categories: attributed (an end is a process, none closed before its look-up),
# closed before look-up (an end closed: its process unknown, the other end's may be
# known), not attributable; +3 when the frame was filtered out
ATTRIBUTED, CLOSED_FIRST, UNATTRIBUTED = 0, 1, 2
_DROPPED = 3


class Answer(Protocol):
    owner: SocketOwner | None
    final: bool


class Lookup(Protocol):
    """What :class:`Attribution` asks (:class:`rawlab.sockets.owners.OwnerLookup`)."""

    def owner(self, family: int, protocol: int, local: bytes, lport: int, remote: bytes,
              rport: int) -> Any: ...


@dataclass(frozen=True)
class ProcessMatch:
    """``--pid``, ``--comm``, ``--cgroup``: an owner matches if any given value does
    (a cgroup matches itself and every cgroup below it)."""

    pids: frozenset[int] = frozenset()
    comms: frozenset[str] = frozenset()
    cgroups: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.pids or self.comms or self.cgroups)

    def __call__(self, o: SocketOwner | None) -> bool:
        if o is None or o.state != PROCESS:
            return False
        if o.pid in self.pids or o.comm in self.comms:
            return True
        cg = o.cgroup or ""
        return any(cg == c or cg.startswith(c.rstrip("/") + "/") for c in self.cgroups)


@dataclass(eq=False)
class AttributionCounts:
    """Frames by category (see the module's constants); flows looked up. ``slow``: those
    the slow path counted; ``readers``: the compiled readers, which count the rest."""

    slow: list[int] = field(default_factory=lambda: [0] * 6)
    flows: int = 0
    readers: list[Any] = field(default_factory=list, compare=False, repr=False)

    @property
    def frames(self) -> list[int]:
        """Frames by category, every reader's added."""
        out = list(self.slow)
        for r in self.readers:
            out = [a + b for a, b in zip(out, r.counts, strict=True)]
        return out

    @property
    def attributed(self) -> int:
        return self.frames[ATTRIBUTED] + self.frames[ATTRIBUTED + _DROPPED]

    @property
    def closed(self) -> int:
        return self.frames[CLOSED_FIRST] + self.frames[CLOSED_FIRST + _DROPPED]

    @property
    def unattributed(self) -> int:
        return self.frames[UNATTRIBUTED] + self.frames[UNATTRIBUTED + _DROPPED]

    @property
    def dropped(self) -> int:
        return sum(self.frames[_DROPPED:])

    @property
    def total(self) -> int:
        return sum(self.frames)


class Flow:
    """One TCP or UDP flow: the owners of its two ends (in canonical key order)."""

    __slots__ = ("checked", "ends", "entries", "family", "final", "key", "keys", "looked",
                 "seen")

    def __init__(self, key: tuple[int, bytes, int, bytes, int], family: int) -> None:
        self.key = key
        self.family = family
        self.ends: list[SocketOwner | None] = [None, None]
        self.final = [True, True]
        self.looked = self.checked = self.seen = 0
        self.entries: tuple[Entry, Entry] | None = None
        self.keys: tuple[bytes, bytes] | None = None  # raw IPv4 keys, key order then reverse


def category(owners: Owners) -> int:
    """ATTRIBUTED, CLOSED_FIRST or UNATTRIBUTED for a frame with these owners (an end
    closed before its look-up makes it CLOSED_FIRST even when the other end is named:
    the frame's attribution is not whole)."""
    states = {o.state for o in owners if o is not None}
    if CLOSED in states:
        return CLOSED_FIRST
    return ATTRIBUTED if PROCESS in states else UNATTRIBUTED


# the fast shapes: link type -> where the EtherType and the IPv4 header lie
_SHAPES = {
    int(LinkType.ETHERNET): (12, 14),
    int(LinkType.LINUX_SLL): (14, 16),
    int(LinkType.LINUX_SLL2): (0, 20),
}


class Attribution:
    """Sets ``rec.owners`` on each record and says whether to keep it (see the module)."""

    def __init__(self, lookup: Lookup, match: ProcessMatch | None = None, *,
                 retry_ns: int = 2_000_000, recheck_ns: int = 2_000_000_000,
                 idle_ns: int = 30_000_000_000) -> None:
        self.lookup = lookup
        self.match = match if match else None
        self.retry_ns = retry_ns
        self.recheck_ns = recheck_ns
        self.idle_ns = idle_ns
        self.counts = AttributionCounts()
        self._n = self.counts.slow
        self._flows: dict[tuple[int, bytes, int, bytes, int], Flow] = {}
        self._tcp: dict[bytes, Entry] = {}
        self._udp: dict[bytes, Entry] = {}
        self._none: Entry
        self._readers: dict[int, Callable[[Buffer, int, int, int], Entry]] = {}
        # [when the next sweep is due, generation]: a list, the readers hold it; the
        # generation changes with the tables (a reader forgets the entry it kept)
        self._sweep_at = [0, 0]
        self._none = (None, self.match is None,
                      UNATTRIBUTED + (0 if self.match is None else _DROPPED))

    def __call__(self, rec: Record) -> bool:
        """Attribute one record (``rec.owners``); False when the filter drops it."""
        at = self._readers.get(rec.linktype) or self.reader(rec.linktype)
        e = at(rec.data, 0, len(rec.data), rec.ts_ns)
        rec.owners = e[0]
        return e[1]

    def reader(self, linktype: int) -> Callable[[Buffer, int, int, int], Entry]:
        """``at(buf, start, caplen, ts_ns)``: the frame of `linktype` at ``buf[start:start
        + caplen]`` counted and attributed: (owners, keep, category) (a ring's memory can
        be given as it is); made once per link type (its names bound: it runs for every
        frame)."""
        got = self._readers.get(linktype)
        if got is not None:
            return got
        from rawlab._kernels import FlowReader

        slow = self._slow

        def miss(buf: Buffer, start: int, caplen: int, ts_ns: int) -> Entry:
            return slow(bytes(buf[start:start + caplen]), linktype, ts_ns)

        et_at, ip_at = _SHAPES.get(linktype, (-1, -1))
        # (the compiled fast path: key by the raw IPv4 addresses and ports, in C)
        at = FlowReader(et_at, ip_at, self._sweep_at, self._tcp, self._udp, miss)
        self._readers[linktype] = at
        self.counts.readers.append(at)
        return at

    # -- the slow path ---------------------------------------------------------

    def _slow(self, data: bytes, linktype: int, ts: int) -> Entry:
        self._sweep_at[1] += 1  # (the tables may change below)
        if ts >= self._sweep_at[0]:
            self._sweep(ts)
        got = flow_of(data, linktype)
        if got is None:
            e = self._none
        else:
            fam, proto, src, sport, dst, dport, flags = got
            key, swapped = canonical(src, sport, dst, dport)
            fk = (proto, *key)
            f = self._flows.get(fk)
            if f is None:
                f = self._flows[fk] = Flow(fk, fam)
                self.counts.flows += 1
                self._look(f, (0, 1), ts)
            elif proto == 6 and flags & 0x12 == 0x02 and ts - f.looked >= self.retry_ns:
                self._look(f, (0, 1), ts)  # a new connection on a known 4-tuple
            elif not all(f.final) and ts - f.looked >= self.retry_ns:
                self._look(f, [i for i in (0, 1) if not f.final[i]], ts)
            elif ts - f.checked >= self.recheck_ns:
                self._look(f, [i for i in (0, 1) if f.ends[i] is not None], ts)
            f.seen = ts
            assert f.entries is not None
            e = f.entries[swapped]
            if f.keys is not None and proto in (6, 17):
                table = self._tcp if proto == 6 else self._udp
                if all(f.final):
                    table[f.keys[0]], table[f.keys[1]] = f.entries
                else:  # (a new connection on the 4-tuple: not the last one's entries)
                    table.pop(f.keys[0], None)
                    table.pop(f.keys[1], None)
        self._n[e[2]] += 1
        return e

    def _look(self, f: Flow, ends: Iterable[int], ts: int) -> None:
        """Ask the lookup for these ends of `f` (0: the key's first endpoint)."""
        proto, a, ap, b, bp = f.key
        fam = socket.AF_INET if f.family == 4 else socket.AF_INET6
        for i in ends:
            local, lport, remote, rport = (a, ap, b, bp) if i == 0 else (b, bp, a, ap)
            ans = self.lookup.owner(fam, proto, local, lport, remote, rport)
            f.ends[i] = ans.owner
            f.final[i] = ans.final
        f.looked = ts
        if all(f.final):
            f.checked = ts
        fwd: Owners = (f.ends[0], f.ends[1])
        rev: Owners = (f.ends[1], f.ends[0])
        cat = category(fwd)
        keep = self.match is None or self.match(f.ends[0]) or self.match(f.ends[1])
        idx = cat + (0 if keep else _DROPPED)
        f.entries = ((fwd, keep, idx), (rev, keep, idx))
        if f.family == 4:
            pa, pb = ap.to_bytes(2, "big"), bp.to_bytes(2, "big")
            f.keys = (a + b + pa + pb, b + a + pb + pa)

    def _sweep(self, ts: int) -> None:
        """Every ``recheck_ns``: send every flow through the slow path again (it is looked
        up again there), and forget flows idle for ``idle_ns``."""
        self._tcp.clear()
        self._udp.clear()
        old = ts - self.idle_ns
        for k in [k for k, f in self._flows.items() if f.seen < old]:
            del self._flows[k]
        self._sweep_at[0] = ts + self.recheck_ns


# ICMP and ICMPv6 echo requests and replies: their identifier is the pinging ping
# socket's port, at the request's source and the reply's destination
_ECHO = {(1, 8): "request", (1, 0): "reply", (58, 128): "request", (58, 129): "reply"}


def flow_of(data: bytes, linktype: int
            ) -> tuple[int, int, bytes, int, bytes, int, int] | None:
    """(IP version, protocol, src, sport, dst, dport, TCP flags or 0) of a TCP or UDP
    packet, or an ICMP/ICMPv6 echo, of a common shape (an echo's identifier is the port
    of its pinging end, the other end's is 0: request and reply make one flow); None for
    anything else (not attributable)."""
    w = walk(data, linktype)
    if w is None:
        return None
    net, ip, proto, l4, _stop, marks = w
    if proto in (1, 58):
        kind = _ECHO.get((proto, data[l4])) if len(data) >= l4 + 6 else None
        if kind is None or marks & FRAG_LATER:
            return None
        ident = data[l4 + 4] << 8 | data[l4 + 5]  # the pinging end's "port"
        sport, dport = (ident, 0) if kind == "request" else (0, ident)
    elif proto not in (6, 17) or marks & FRAG_LATER or len(data) < l4 + 4:
        return None
    else:
        sport = data[l4] << 8 | data[l4 + 1]
        dport = data[l4 + 2] << 8 | data[l4 + 3]
    if net == 0x0800:
        fam, src, dst = 4, data[ip + 12:ip + 16], data[ip + 16:ip + 20]
    else:
        fam, src, dst = 6, data[ip + 8:ip + 24], data[ip + 24:ip + 40]
    flags = data[l4 + 13] if proto == 6 and len(data) > l4 + 13 else 0
    return fam, proto, bytes(src), sport, bytes(dst), dport, flags
