"""The packet list's columns (as Wireshark's): No., Time (since the first frame), Source,
Destination, Protocol, Length, Info, Process.

    row = packet_row(frame, rec, pkt, t0_ns)       # a ListRow of texts
    line = row_line(row, widths)                    # one fixed-width line of it

Info is the one-line view's own text (rawlab.present.packet.summary, absolute
sequence numbers: a list read at random has no "previous packet of the stream")
after the addresses the Source and Destination columns already show, the ports
kept in front. Process: the processes that own the two ends when the record
carries them (rawlab.present.processes' labels; empty when nothing is known).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rawlab.decode.dispatch import Packet
from rawlab.present.fmt import ip_text, mac_text
from rawlab.present.packet import summary
from rawlab.records import Record

COLUMNS = ("No.", "Time", "Source", "Destination", "Protocol", "Length", "Info", "Process")
WIDTHS = (7, 11, 15, 15, 8, 6, 0, 16)  # Info (0): what is left
PROTOCOL_NAMES = {"eth": "Ethernet", "sll": "SLL", "arp": "ARP", "ipv4": "IPv4", "ipv6": "IPv6",
                  "tcp": "TCP", "udp": "UDP", "icmp": "ICMP", "icmpv6": "ICMPv6",
                  "netlink": "Netlink", "vsock": "vsock", "data": "data"}


@dataclass(frozen=True, slots=True)
class ListRow:
    number: int
    time: str
    src: str
    dst: str
    protocol: str
    length: int
    info: str
    process: str = ""

    def cells(self) -> tuple[str, ...]:
        return (str(self.number), self.time, self.src, self.dst, self.protocol,
                str(self.length), self.info, self.process)


def since(ts_ns: int, t0_ns: int) -> str:
    """Seconds since the first frame, µs shown (Wireshark's default time column)."""
    d = ts_ns - t0_ns
    sign = "-" if d < 0 else ""
    sec, us = divmod(abs(d) // 1000, 1_000_000)
    return f"{sign}{sec}.{us:06d}"


def process_text(who: Any) -> str:
    """A sender as ``comm[pid]`` (rawlab.sockets.proc.Process and the like), else ''."""
    if who is None:
        return ""
    comm, pid = getattr(who, "comm", None), getattr(who, "pid", None)
    return f"{comm}[{pid}]" if comm is not None and pid is not None else str(who)


def packet_row(frame: int, rec: Record, pkt: Packet, t0_ns: int) -> ListRow:
    """The list's row for one decoded packet."""
    own = pkt.layers[: pkt.quoted]
    names = [lay.name for lay in own if lay.name != "data"] or ["data"]
    src = dst = ""
    ip = next((lay for lay in reversed(own) if lay.name in ("ipv4", "ipv6")), None)
    first: Any = own[0] if own else None
    if ip is not None:
        src, dst = ip_text(ip.src), ip_text(ip.dst)
    elif first is not None and first.name == "eth":
        src, dst = mac_text(first.src), mac_text(first.dst)
    elif first is not None and first.name == "vsock":
        src, dst = f"{first.src_cid}:{first.src_port}", f"{first.dst_cid}:{first.dst_port}"
    info = summary(pkt, rec.wirelen)
    if ip is not None and info.startswith(("IP ", "IP6 ")):
        info = info.split(": ", 1)[-1]
        l4: Any = next((lay for lay in own if lay.name in ("tcp", "udp")), None)
        if l4 is not None:
            info = f"{l4.sport} > {l4.dport} {info}"
    return ListRow(frame, since(rec.ts_ns, t0_ns), src, dst,
                   PROTOCOL_NAMES.get(names[-1], names[-1]), rec.wirelen, info,
                   owners_text(rec.owners))


def owners_text(owners: Any) -> str:
    """The Process column: the source's and the destination's owner (``curl[812] >
    nginx[77]``), whichever is known."""
    if owners is None:
        return ""
    from rawlab.present.processes import label

    src, dst = (label(o) for o in owners)
    return f"{src} > {dst}" if src and dst else src or (f"> {dst}" if dst else "")


def widths_for(total: int, *, addr: int = 15, protocol: int = 8,
               process: bool = False) -> tuple[int, ...]:
    """Column widths for a terminal ``total`` cells wide: Source and Destination ``addr``
    wide (the longest address shown), Protocol ``protocol``, Info what is left (at least
    20); the Process column only when some row has a process."""
    fixed = list(WIDTHS)
    fixed[2] = fixed[3] = max(addr, 11)
    fixed[4] = max(protocol, 8)
    if not process:
        fixed[-1] = 0
    info = max(total - sum(fixed) - (sum(1 for w in fixed if w) - 0), 20)
    return tuple(info if i == 6 else w for i, w in enumerate(fixed))


def row_line(row: ListRow, widths: tuple[int, ...]) -> str:
    """The row as one line of fixed-width columns (cut with '…' where too long)."""
    return cells_line(row.cells(), widths)


def header_line(widths: tuple[int, ...]) -> str:
    return cells_line(COLUMNS, widths)


def cells_line(cells: tuple[str, ...], widths: tuple[int, ...]) -> str:
    parts = []
    for i, (cell, w) in enumerate(zip(cells, widths, strict=True)):
        if w == 0:
            continue
        text = cell[: w - 1] + "…" if len(cell) > w else cell
        parts.append(text.rjust(w) if i in (0, 5) else text.ljust(w))
    return " ".join(parts).rstrip()
