"""The protocol hierarchy output of ``rawlab read --stats``, laid out as ``tshark -z io,phs``.

    sink = HierarchySink(sys.stdout, counts, source="x.pcap", expression=None)
    pipeline.run(records, [sink], counts=counts)     # the table is printed on close

Counting needs only each packet's layer names (the decoder's names-only walk), and
decoded views only for IP fragments, which are reassembled (rawlab.analysis.reassembly:
the packet that completes a datagram counts the protocols inside it), and for the TCP
segments of stream protocols (TLS, HTTP, DNS over TCP), which are reassembled
(rawlab.analysis.streams) so that a message counts on the frame that completes it, as
tshark counts them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from rawlab.analysis.hierarchy import ProtocolHierarchy
from rawlab.analysis.reassembly import IpReassembly
from rawlab.decode.dispatch import Decoder, Packet
from rawlab.records import Interface, Record

if TYPE_CHECKING:
    from rawlab.pipeline import Counts

RULE = "=" * 67
DEAD_FLOWS = 1 << 16


def stats_text(hierarchy: ProtocolHierarchy, matched: int, seen: int, source: str,
               expression: str | None) -> str:
    """The protocol hierarchy as `tshark -z io,phs` lays it out."""
    lines = [RULE, "Protocol Hierarchy Statistics", f"Filter: {expression or ''}", ""]
    for row in hierarchy.rows():
        label = "  " * row.depth + row.name
        lines.append(f"{label:<40} frames:{row.packets} bytes:{row.bytes}")
    lines.append(RULE)
    lines.append(f"{matched} of {seen} packets in {source}")
    return "\n".join(lines)


class HierarchySink:
    """Counts packets and bytes per protocol path; prints the table when closed."""

    decodes = False
    uses_interface = False

    def __init__(self, out: TextIO, counts: Counts, *, source: str,
                 expression: str | None = None) -> None:
        self.out = out
        self.counts = counts
        self.source = source
        self.expression = expression
        self.hierarchy = ProtocolHierarchy()
        self._tcp: Any = None  # rawlab.analysis.streams.TcpStreams, on the first segment
        self._dead: set[bytes] = set()
        self.packet = self._counter()

    def _counter(self) -> Callable[[int, Record, Packet | None, Interface | None], None]:
        """The per-packet hook: the names-only walk, one count (names bound once: it runs
        for every packet of ``read --stats``)."""
        dec = Decoder()
        dec.fragments = IpReassembly(dec).names
        path = dec.path
        counts = self.hierarchy.paths  # (ProtocolHierarchy.add, inline: one call less)
        streams = self._streams

        def packet(frame: int, rec: Record, pkt: Packet | None,
                   iface: Interface | None) -> None:
            p = path(rec.data, rec.linktype)
            if dec.stream is not None:  # a TCP segment of a stream protocol's port
                p = streams(dec, frame, rec, p)
            acc = counts.get(p)
            if acc is None:
                counts[p] = [1, rec.wirelen]
            else:
                acc[0] += 1
                acc[1] += rec.wirelen

        return packet

    def _streams(self, dec: Decoder, frame: int, rec: Record,
                 names: tuple[str, ...]) -> tuple[str, ...]:
        """The names of a TCP segment on a stream protocol's port: reassembled (as tshark,
        the messages count on the frame that completes them). Directions whose first
        bytes were not the protocol are remembered and skipped (``DEAD_FLOWS`` at most)."""
        w = dec.stream
        dec.stream = None
        assert w is not None
        data = rec.data
        o, l4 = w[1], w[3]
        key = data[o + 12 : l4 + 4] if w[0] == 0x0800 else data[o + 8 : o + 40] + data[
            l4 : l4 + 4]
        if key in self._dead:
            return names
        if self._tcp is None:
            from rawlab.analysis.streams import TcpStreams

            self._tcp = TcpStreams(dec.table)
        tcp = self._tcp
        views = tcp.feed(frame, rec.ts_ns, dec.decode(data, rec.linktype))
        if not views and tcp.last_started and getattr(tcp.last_ctor, "TREE_ON_START", False):
            return (*names, tcp.last_ctor.name)  # a message begins here (tshark's empty tree)
        if self._tcp.last_dead:
            if len(self._dead) >= DEAD_FLOWS:
                self._dead.clear()
            self._dead.add(key)
        dec.streams_live = self._tcp.live > 0
        for v in views:
            if v.name != names[-1]:
                names = (*names, v.name)
        return names

    def close(self) -> None:
        c = self.counts
        self.out.write(stats_text(self.hierarchy, c.matched, c.seen, self.source,
                                  self.expression) + "\n")
        self.out.flush()
