"""Records in, decoded output out: the path shared by `rawlab read` and `rawlab capture`.

    records ─▶ [filter] ─▶ [writer] ─▶ decode ─▶ sink (line | tree | json | stats)

Frame numbers count every record of the source (as tshark's frame.number),
so a filtered view keeps the numbers of the whole file. Whatever happens
(an error in the source, Ctrl-C), every record already taken is written and
the writer is flushed and closed: the output file stays valid.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TextIO

from rawlab.decode.dispatch import Decoder
from rawlab.decode.hierarchy import ProtocolHierarchy
from rawlab.pcap.writer import PcapngWriter, PcapWriter
from rawlab.present import packet as fmt
from rawlab.records import CsumHint, Interface, Record
from rawlab.sockets.bpf import OfflineFilter

MODES = ("line", "tree", "json", "stats", "none")


@dataclass
class Counts:
    seen: int = 0  # records read from the source
    matched: int = 0  # records the filter selected (all, without a filter)
    written: int = 0
    hierarchy: ProtocolHierarchy = field(default_factory=ProtocolHierarchy)


class Writer:
    """pcapng (interface names and link types kept) or plain pcap output."""

    def __init__(self, path: str, *, pcap: bool = False):
        self.path = path
        self.pcap = pcap
        self._ng: PcapngWriter | None = None
        self._pc: PcapWriter | None = None
        self._ifmap: dict[int, int] = {}

    def write(self, rec: Record, iface: Interface | None) -> None:
        if self.pcap:
            if self._pc is None:
                self._pc = PcapWriter(self.path, rec.linktype)
            self._pc.write_record(rec)
            return
        if self._ng is None:
            self._ng = PcapngWriter(self.path, buffer_bytes=1 << 16)
        idx = self._ifmap.get(rec.interface)
        if idx is None:
            idx = self._ng.add_interface(
                rec.linktype, iface.name if iface else None,
                snaplen=iface.snaplen if iface and iface.snaplen else 262144)
            self._ifmap[rec.interface] = idx
        self._ng.write_record(rec, interface=idx)

    def flush(self) -> None:
        for w in (self._ng, self._pc):
            if w is not None:
                w.flush()

    def close(self) -> None:
        if self._ng is None and self._pc is None and not self.pcap:
            # nothing matched: still leave a valid (empty) pcapng behind
            self._ng = PcapngWriter(self.path)
        for w in (self._ng, self._pc):
            if w is not None:
                w.close()


class RotatingWriter:
    """tcpdump -G: a new file every `seconds` of capture time, named by strftime(pattern).

    A pattern without a strftime conversion gets "-%Y%m%d-%H%M%S" before its
    extension, so a rotation never overwrites the file before it.
    """

    def __init__(self, pattern: str, seconds: int, *, pcap: bool = False):
        if "%" not in pattern:
            stem, dot, ext = pattern.rpartition(".")
            pattern = f"{stem}-%Y%m%d-%H%M%S.{ext}" if dot and stem else f"{pattern}-%Y%m%d-%H%M%S"
        self.pattern = pattern
        self.seconds = seconds
        self.pcap = pcap
        self.current: Writer | None = None
        self.until_ns = 0
        self.files: list[str] = []

    def write(self, rec: Record, iface: Interface | None) -> None:
        if self.current is None or rec.ts_ns >= self.until_ns:
            if self.current is not None:
                self.current.close()
            start = rec.ts_ns // 1_000_000_000
            name = time.strftime(self.pattern, time.localtime(start))
            self.current = Writer(name, pcap=self.pcap)
            self.files.append(name)
            self.until_ns = (start + self.seconds) * 1_000_000_000
        self.current.write(rec, iface)

    def flush(self) -> None:
        if self.current is not None:
            self.current.flush()

    def close(self) -> None:
        if self.current is not None:
            self.current.close()


def run(records: Iterable[Record], *, mode: str = "line", out: TextIO | None = None,
        expression: str | None = None, count: int | None = None,
        writer: Writer | RotatingWriter | None = None,
        interfaces: Callable[[int], Interface | None] = lambda i: None,
        counts: Counts | None = None) -> Counts:
    """Push records through filter, writer and decoder into `out`; return the counts.

    `interfaces(n)` names interface n of the source. `counts` may be passed in
    so that a caller still has them when the source raises midway.
    """
    out = out or sys.stdout
    c = counts or Counts()
    filt = OfflineFilter(expression) if expression else None
    dec = Decoder()
    write = out.write
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    hier_add = c.hierarchy.add
    try:
        for rec in records:
            c.seen += 1
            if filt is not None and not filt.match(rec.linktype, rec.data, rec.wirelen):
                continue
            c.matched += 1
            iface = interfaces(rec.interface)
            if writer is not None:
                writer.write(rec, iface)
                c.written += 1
            if mode == "stats":
                hier_add(dec.path(rec.data, rec.linktype), rec.wirelen)
            elif mode != "none":
                pkt = dec.decode(rec.data, rec.linktype, hint=CsumHint(rec.csum_status))
                name = iface.name if iface and iface.name else None
                if mode == "line":
                    write(fmt.line(c.seen, rec, pkt, name) + "\n")
                elif mode == "json":
                    write(dumps(fmt.packet_json(c.seen, rec, pkt,
                                                name if name else rec.interface)) + "\n")
                else:
                    write("\n".join(fmt.tree(c.seen, rec, pkt, name or rec.interface)) + "\n\n")
            if count is not None and c.matched >= count:
                break
    finally:
        if writer is not None:
            writer.close()
        out.flush()
    return c


def stats_text(c: Counts, source: str, expression: str | None) -> str:
    """The protocol hierarchy as `tshark -z io,phs` lays it out."""
    rule = "=" * 67
    lines = [rule, "Protocol Hierarchy Statistics", f"Filter: {expression or ''}", ""]
    for row in c.hierarchy.rows():
        label = "  " * row.depth + row.name
        lines.append(f"{label:<40} frames:{row.packets} bytes:{row.bytes}")
    lines.append(rule)
    lines.append(f"{c.matched} of {c.seen} packets in {source}")
    return "\n".join(lines)
