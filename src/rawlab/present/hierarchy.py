"""The protocol hierarchy output of ``rawlab read --stats``, laid out as ``tshark -z io,phs``.

    sink = HierarchySink(sys.stdout, counts, source="x.pcap", expression=None)
    pipeline.run(records, [sink], counts=counts)     # the table is printed on close

Counting needs only each packet's layer names (the decoder's names-only walk),
never the decoded views.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from rawlab.analysis.hierarchy import ProtocolHierarchy
from rawlab.decode.dispatch import Decoder, Packet
from rawlab.records import Interface, Record

if TYPE_CHECKING:
    from rawlab.pipeline import Counts

RULE = "=" * 67


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
        self.packet = self._counter()

    def _counter(self) -> Callable[[int, Record, Packet | None, Interface | None], None]:
        """The per-packet hook: the names-only walk, one count (names bound once: it runs
        for every packet of ``read --stats``)."""
        path = Decoder().path
        add = self.hierarchy.add

        def packet(frame: int, rec: Record, pkt: Packet | None,
                   iface: Interface | None) -> None:
            add(path(rec.data, rec.linktype), rec.wirelen)

        return packet

    def close(self) -> None:
        c = self.counts
        self.out.write(stats_text(self.hierarchy, c.matched, c.seen, self.source,
                                  self.expression) + "\n")
        self.out.flush()
