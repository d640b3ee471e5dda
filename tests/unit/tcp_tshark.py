"""Compare rawlab's TCP analysis with tshark's, frame by frame (shared by the tcp tests).

Not a test module itself: test_tcp_captures.py (unit tier, the committed captures)
and tests/privileged/test_tcp_tshark.py (fresh captures) import it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rawlab.analysis.tcp import ANALYSIS_NAMES, Segment, TcpAnalyzer
from rawlab.pcap.reader import open_file

# tshark field -> how to read it from a Segment
SCALARS: dict[str, Any] = {
    "tcp.stream": lambda s: s.stream,
    "tcp.seq": lambda s: s.seq_rel,
    "tcp.seq_raw": lambda s: s.seq,
    "tcp.ack": lambda s: s.ack_rel,
    "tcp.ack_raw": lambda s: s.ack,
    "tcp.len": lambda s: s.len,
    "tcp.nxtseq": lambda s: s.next_seq_rel,
    "tcp.window_size_value": lambda s: s.window_raw,
    "tcp.window_size": lambda s: s.window,
    "tcp.analysis.duplicate_ack_num": lambda s: s.dup_ack_num,
    "tcp.analysis.duplicate_ack_frame": lambda s: s.dup_ack_frame,
    "tcp.analysis.acks_frame": lambda s: s.acked_frame,
    "tcp.analysis.ack_rtt": lambda s: s.ack_rtt_ns,
    "tcp.analysis.bytes_in_flight": lambda s: s.bytes_in_flight,
}
# per connection. tshark shows tcp.completeness as it stood *before* the frame (it adds the
# field, then updates the value), and initial_rtt only on frames that carry other analysis.
CONN_SCALARS: dict[str, Any] = {
    "tcp.completeness": lambda c: c.completeness,
    "tcp.analysis.initial_rtt": lambda c: c.irtt_ns,
}
# rawlab analysis name -> tshark field
FLAG_FIELDS = {n: f"tcp.analysis.{n}" for n in ANALYSIS_NAMES}
# The flags the issue asks 100% agreement on.
KEY_FLAGS = ("retransmission", "fast_retransmission", "duplicate_ack", "out_of_order",
             "zero_window", "window_full")


def have_tshark() -> bool:
    return shutil.which("tshark") is not None


def tshark_rows(path: Path) -> dict[int, dict[str, str]]:
    fields = ["frame.number", *SCALARS, *CONN_SCALARS, *FLAG_FIELDS.values()]
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=f", "-Y", "tcp"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        vals = line.split("\t")
        row = dict(zip(fields, vals, strict=False))
        rows[int(row["frame.number"])] = row
    return rows


def rawlab_segments(path: Path) -> tuple[dict[int, Segment], dict[int, dict[str, Any]]]:
    """Segments by frame, and the per-connection values as they stood after each frame."""
    tcp = TcpAnalyzer()
    segs: dict[int, Segment] = {}
    conn_vals: dict[int, dict[str, Any]] = {}
    by_stream: dict[int, Any] = {}
    before: dict[int, int] = {}
    with open_file(path) as cap:
        for frame, rec in enumerate(cap, 1):
            for ev in tcp.feed_bytes(frame, rec.ts_ns, rec.data, rec.linktype, rec.csum_status):
                if isinstance(ev, Segment):
                    segs[ev.frame] = ev
            if frame in segs:
                conns = by_stream if segs[frame].stream in by_stream else {
                    c.stream: c for c in tcp.connections()}
                by_stream.update(conns)
                c = by_stream[segs[frame].stream]
                conn_vals[frame] = {f: get(c) for f, get in CONN_SCALARS.items()}
                stream = segs[frame].stream
                # a SYN reusing ports starts its new stream at 1 (dissect_tcp presets it)
                first = 1 if "reused_ports" in segs[frame].analysis else 0
                conn_vals[frame]["tcp.completeness"] = before.get(stream, first)
                before[stream] = c.completeness
    return segs, conn_vals


def _tshark_value(field_name: str, raw: str) -> int | None:
    if raw == "":
        return None
    if field_name in ("tcp.analysis.ack_rtt", "tcp.analysis.initial_rtt"):
        return round(float(raw) * 1e9)
    return int(raw)


@dataclass
class Comparison:
    frames: int = 0
    flag_counts: dict[str, int] = field(default_factory=dict)  # tshark's count per flag
    mismatches: list[str] = field(default_factory=list)
    by_kind: dict[str, list[int]] = field(default_factory=dict)

    def add(self, kind: str, frame: int, text: str) -> None:
        self.by_kind.setdefault(kind, []).append(frame)
        if len(self.mismatches) < 40:
            self.mismatches.append(f"frame {frame}: {text}")

    def summary(self) -> str:
        kinds = ", ".join(f"{k}: {len(v)} (frames {v[:8]})" for k, v in self.by_kind.items())
        return (f"{self.frames} frames; tshark flags {self.flag_counts}; "
                f"differences: {kinds or 'none'}\n" + "\n".join(self.mismatches))


def compare(path: Path, *, scalars: tuple[str, ...] | None = None) -> Comparison:
    """Every TCP frame: seq/ack (relative and raw), len, window, analysis flags and values."""
    ts = tshark_rows(path)
    rl, conn_vals = rawlab_segments(path)
    res = Comparison(frames=len(ts))
    check = scalars if scalars is not None else tuple(SCALARS)
    for frame, row in ts.items():
        seg = rl.get(frame)
        if seg is None:
            res.add("missing", frame, "tshark has a TCP segment, rawlab none")
            continue
        for f in check:
            want = _tshark_value(f, row[f])
            got = SCALARS[f](seg)
            if want != got:
                res.add(f, frame, f"{f} tshark {want} rawlab {got}")
        for f, got in conn_vals[frame].items():
            want = _tshark_value(f, row[f])
            if want is None and f == "tcp.analysis.initial_rtt":
                continue
            if want != got:
                res.add(f, frame, f"{f} tshark {want} rawlab {got}")
        for name, f in FLAG_FIELDS.items():
            want_b = row[f] != ""
            if want_b:
                res.flag_counts[name] = res.flag_counts.get(name, 0) + 1
            got_b = name in seg.analysis
            if want_b != got_b:
                res.add(name, frame, f"{name}: tshark {want_b} rawlab {got_b} "
                        f"(rawlab {seg.analysis})")
    for frame in rl:
        if frame not in ts:
            res.add("extra", frame, "rawlab has a segment tshark does not")
    return res
