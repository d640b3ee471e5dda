"""The ladder (sequence) diagram: client and server columns, one arrow per segment.

    frame   time ms  client 10.0.0.1:40000                     server 10.0.0.2:80
        3     0.000  ├── SYN seq=0 win=64240 len=0 ───────────────────▶┤  mss 1460,ws 10,sack,ts
        4     0.037  ├◀─ SYN,ACK seq=0 ack=1 win=65160 len=0 ─────────┤

Each arrow carries the flags, relative seq/ack, payload length and window
(scaled once the scale is known); expert flags (Wireshark's names) and a
checksum that is not good follow it. With ``explain=True`` a one-line reason
follows each segment: why the ACK is ISN+1, what the window means, why a
checksum reads "partial".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TextIO

from rawlab.analysis.tcp import Connection, ConnectionClosed, Handshake, Segment
from rawlab.decode.tcp import ACK, FIN, RST, SYN, TcpFlag
from rawlab.present.fmt import endpoint
from rawlab.present.processes import label
from rawlab.records import Owners

# Wireshark's order ("PSH, ACK"), its names (TcpFlag's); AE is not shown
FLAG_NAMES = tuple((int(f), str(f.name)) for f in (
    TcpFlag.SYN, TcpFlag.FIN, TcpFlag.RST, TcpFlag.PSH, TcpFlag.ACK, TcpFlag.URG, TcpFlag.ECE,
    TcpFlag.CWR))
ARROW = 58  # characters between the two columns


def flag_words(flags: int) -> str:
    return ",".join(n for bit, n in FLAG_NAMES if flags & bit) or "none"


def options_text(opts: dict[str, Any]) -> str:
    """The ladder's short form of an options summary (rawlab.decode.tcp.options_summary)."""
    out = []
    if "mss" in opts:
        out.append(f"mss {opts['mss']}")
    if "wscale" in opts:
        out.append(f"ws {opts['wscale']}")
    if opts.get("sack_perm"):
        out.append("sack")
    if "ts" in opts:
        out.append("ts")
    if opts.get("sack"):
        out.append("sack " + " ".join(f"{a}-{b}" for a, b in opts["sack"]))
    return ",".join(out)


def arrow(seg: Segment) -> str:
    label = (f" {flag_words(seg.flags)} seq={seg.seq_rel}"
             + (f" ack={seg.ack_rel}" if seg.flags & ACK else "")
             + f" win={seg.window} len={seg.len} ")
    room = ARROW - 4 - len(label)
    if seg.dir == 0:
        return "├──" + label + "─" * max(room, 1) + "▶┤"
    return "├◀─" + label + "─" * max(room, 1) + "─┤"


def tags(seg: Segment) -> str:
    parts = list(seg.analysis)
    if "duplicate_ack" in parts and seg.dup_ack_num:
        parts[parts.index("duplicate_ack")] = f"dup_ack #{seg.dup_ack_num} of {seg.dup_ack_frame}"
    if seg.capture_loss:
        parts.append("capture_loss")
    if seg.checksum_status != "good":
        parts.append(f"cksum {seg.checksum_status}")
    o = options_text(seg.options) if seg.flags & SYN else ""
    return "  ".join(x for x in (o, " ".join(f"[{p}]" for p in parts)) if x)


def explain(seg: Segment, said: set[str] | None = None) -> str:
    """One line saying why this segment looks the way it does.

    `said` collects the general remarks already made (e.g. why a checksum is
    partial), so that each is made once per stream, not on every segment.
    """
    said = set() if said is None else said
    who = "client" if seg.dir == 0 else "server"
    other = "server" if seg.dir == 0 else "client"
    why: list[str] = []
    f = seg.flags
    if f & SYN and not f & ACK:
        why.append(f"the {who} opens: its initial sequence number (ISN) is {seg.seq}, shown as "
                   "relative 0; a SYN takes up one sequence number")
        if seg.options:
            why.append(f"it offers {options_text(seg.options)}")
    elif f & SYN:
        why.append(f"the {who} answers with its own ISN {seg.seq} (relative 0) and ack = the "
                   f"{other}'s ISN + 1 = {seg.ack}, because the SYN consumed one number")
    elif f & RST:
        why.append(f"the {who} resets the connection: no more data either way")
    elif f & FIN:
        why.append(f"the {who} is done sending (FIN): it takes one sequence number, so the "
                   f"{other} will ack {seg.next_seq_rel}")
    elif seg.len:
        why.append(f"{seg.len} bytes of data: bytes {seg.seq_rel}..{seg.seq_rel + seg.len - 1} "
                   f"of the {who}'s stream; the next segment starts at {seg.next_seq_rel}")
    elif f == ACK and seg.dir == 0 and seg.seq_rel == 1 and seg.ack_rel == 1 \
            and not seg.analysis:  # the client's first pure ACK: the handshake's third step
        why.append(f"the {who} acks the {other}'s SYN (ack = ISN + 1): the handshake is "
                   "complete, data may flow")
    else:
        why.append(f"the {who} acknowledges every byte before {seg.ack_rel} of the {other}'s "
                   "stream (a pure ACK carries no data)")
    if not f & SYN:
        if seg.window_scale >= 0:
            why.append(f"the {who} can take {seg.window} more bytes (window {seg.window_raw} "
                       f"<< scale {seg.window_scale})")
        else:
            why.append(f"the {who} can take {seg.window} more bytes (its window)")
    if seg.checksum_status == "partial" and "partial" not in said:
        said.add("partial")
        why.append("checksum 'partial': captured before the (virtual) NIC filled it in "
                   "(checksum offload); it holds only the pseudo-header sum")
    elif seg.checksum_status == "bad":
        why.append("checksum bad: the bytes were damaged, or written by hand")
    for a in seg.analysis:
        why.append(ANALYSIS_WHY.get(a, a))
    return "; ".join(why)


ANALYSIS_WHY = {
    "retransmission": "retransmission: these bytes were sent before and not acked in time",
    "fast_retransmission": "fast retransmission: sent again at once after duplicate ACKs",
    "spurious_retransmission": "spurious retransmission: the peer had already acked these",
    "out_of_order": "out of order: arrived after later bytes",
    "lost_segment": "previous segment not captured: a gap in the sequence numbers",
    "ack_lost_segment": "acks bytes this capture never saw",
    "duplicate_ack": "duplicate ACK: the peer still waits for the same byte (a hole)",
    "keep_alive": "keep-alive: one byte before the next expected, to check the peer lives",
    "keep_alive_ack": "keep-alive ACK",
    "zero_window": "zero window: the receiver's buffer is full; the sender must stop",
    "zero_window_probe": "zero-window probe: asks whether the window opened",
    "zero_window_probe_ack": "acks a zero-window probe",
    "window_full": "window full: this segment fills the receiver's advertised window",
    "window_update": "window update: only the window changed (the receiver read data)",
}


class LadderSink:
    """The ladder as an output of :func:`rawlab.pipeline.run_tcp`: a header when a stream
    first appears, an arrow per segment (and, with ``explain_lines``, a reason and the
    handshake's completion), one summary line per connection when the input ends."""

    def __init__(self, out: TextIO, *, explain_lines: bool = False,
                 width: int | None = None) -> None:
        self.out = out
        self.explain_lines = explain_lines
        self.width = width  # fold explanations to this many columns (a terminal's)
        self.rows = 0
        self._started: dict[int, int] = {}  # stream -> ts of its first segment
        self._said: dict[int, set[str]] = {}  # stream -> remarks already explained
        self._closed: list[Connection] = []

    def segment(self, seg: Segment, rec: Any = None) -> None:
        w = self.out.write
        t0 = self._started.get(seg.stream)
        if t0 is None:
            t0 = self._started[seg.stream] = seg.ts_ns
            w(header(seg, rec.owners if rec is not None else None) + "\n")
        w(f"{seg.frame:6d} {(seg.ts_ns - t0) / 1e6:9.3f}  {arrow(seg)}  {tags(seg)}".rstrip()
          + "\n")
        self.rows += 1
        if self.explain_lines:
            why = explain(seg, self._said.setdefault(seg.stream, set()))
            w(fold(why, self.width, first=" " * 18 + "↳ ", rest=" " * 20) + "\n")

    def handshake(self, hs: Handshake) -> None:
        if self.explain_lines:
            irtt = f"{hs.irtt_ns / 1e6:.3f} ms" if hs.irtt_ns is not None else "-"
            self.out.write(" " * 18 + f"✓ handshake complete (frames "
                           f"{', '.join(map(str, hs.frames))}), initial RTT {irtt}\n")

    def closed(self, ev: ConnectionClosed) -> None:
        self._closed.append(ev.connection)  # summarised after the last segment

    def close(self) -> None:
        for c in sorted(self._closed, key=lambda c: c.stream):
            self.out.write(footer(c) + "\n")
        self.out.flush()


def fold(text: str, width: int | None, *, first: str, rest: str) -> str:
    """`text` after `first`, folded at word boundaries to `width` columns (continuation
    lines start with `rest`); one line when `width` is None (not a terminal)."""
    if width is None or len(first) + len(text) <= width:
        return first + text
    import textwrap

    return "\n".join(textwrap.wrap(text, width=max(width, len(first) + 20),
                                   initial_indent=first, subsequent_indent=rest,
                                   break_on_hyphens=False))


def render(events: Iterable[Any], out: TextIO, *, explain_lines: bool = False,
           stream: int | None = None, width: int | None = None) -> int:
    """Draw a finished list of events (of one `stream`, or all) as a ladder; rows drawn."""
    from rawlab.pipeline import replay

    sink = LadderSink(out, explain_lines=explain_lines, width=width)
    replay(events, [sink], stream=stream)
    return sink.rows


def header(seg: Segment, owners: Owners | None = None) -> str:
    """The stream's title and column heads; with `owners` (the first segment's record's),
    each end's process beside its endpoint."""
    if seg.dir == 0:
        client, server = endpoint(seg.src_addr, seg.src_port), endpoint(seg.dst_addr, seg.dst_port)
    else:
        client, server = endpoint(seg.dst_addr, seg.dst_port), endpoint(seg.src_addr, seg.src_port)
    if owners is not None:
        c, s = (owners[0], owners[1]) if seg.dir == 0 else (owners[1], owners[0])
        client, server = f"{client} {label(c)}".rstrip(), f"{server} {label(s)}".rstrip()
    left = f"client {client}"
    return (f"\nstream {seg.stream}\n frame   time ms  {left:<{ARROW - 8}}server {server}")


def footer(c: Connection) -> str:
    irtt = f"{c.irtt_ns / 1e6:.3f} ms" if c.irtt_ns is not None else "-"
    s0, s1 = c.stats
    return (f"stream {c.stream}: state {c.state}, history {c.history}, iRTT {irtt}, "
            f"client sent {s0.bytes} B in {s0.segments} segments "
            f"({s0.retransmissions} retransmitted), server sent {s1.bytes} B in "
            f"{s1.segments} ({s1.retransmissions} retransmitted); ended by {c.closed}")
