"""Time-sequence graph (tcptrace / Stevens style) of one TCP stream, as a PNG.

    from rawlab.present.plot import TimeSequence
    ts = TimeSequence(stream=0)
    for seg in segments: ts.add(seg)
    ts.save("flow.png")

x: seconds since the stream's first segment; y: relative sequence number of the
data direction (the side that sent more payload). Each data segment is a
vertical bar from seq to seq+len (red: retransmission, orange: out of order);
the other side's ACK number is the green step line and ACK + window (the right
edge the receiver allows) the yellow one. matplotlib is imported only here and
only when saving; without it: ``pip install 'rawlab[plot]'``.
"""

from __future__ import annotations

from pathlib import Path

from rawlab.analysis.tcp import Segment
from rawlab.errors import Exit, RawlabError, output_error
from rawlab.present.fmt import endpoint

_RTX = frozenset(("retransmission", "fast_retransmission", "spurious_retransmission"))


class TimeSequence:
    """Collects one stream's segments (constant memory per segment: a few ints)."""

    def __init__(self, stream: int) -> None:
        self.stream = stream
        self.t0: int | None = None
        # per direction: data (t, seq, len, kind) and acks (t, ack, window)
        self.data: tuple[list[tuple[int, int, int, int]], ...] = ([], [])
        self.acks: tuple[list[tuple[int, int, int]], ...] = ([], [])
        self.bytes = [0, 0]
        self.title = ""

    def add(self, seg: Segment) -> None:
        if seg.stream != self.stream:
            return
        if self.t0 is None:
            self.t0 = seg.ts_ns
            self.title = (f"stream {seg.stream}: {endpoint(seg.src_addr, seg.src_port)} "
                          f"-> {endpoint(seg.dst_addr, seg.dst_port)}")
        t = seg.ts_ns - self.t0
        if seg.len:
            kind = 2 if _RTX.intersection(seg.analysis) else (
                1 if "out_of_order" in seg.analysis else 0)
            self.data[seg.dir].append((t, seg.seq_rel, seg.len, kind))
            self.bytes[seg.dir] += seg.len
        if seg.flags & 0x10:
            self.acks[seg.dir].append((t, seg.ack_rel, seg.window))

    def save(self, path: str | Path) -> Path:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise RawlabError(
                "--plot needs matplotlib, which is not installed; fix: pip install 'rawlab[plot]'",
                Exit.UNSUPPORTED) from None
        d = 0 if self.bytes[0] >= self.bytes[1] else 1
        fig, ax = plt.subplots(figsize=(11, 6.5), dpi=100)
        colors = ("#1f4e9c", "#e08a00", "#d62728")
        labels = ("data", "out of order", "retransmission")
        for kind in (0, 1, 2):
            pts = [p for p in self.data[d] if p[3] == kind]
            if not pts:
                continue
            xs = [p[0] / 1e9 for p in pts]
            ax.vlines(xs, [p[1] for p in pts], [p[1] + p[2] for p in pts], colors=colors[kind],
                      linewidth=1.6 if kind else 1.0, label=f"{labels[kind]} ({len(pts)})")
            if kind == 2:
                ax.scatter(xs, [p[1] + p[2] for p in pts], marker="x", s=18, color=colors[2],
                           zorder=3)
        acks = self.acks[1 - d]
        if acks:
            xs = [a[0] / 1e9 for a in acks]
            ax.step(xs, [a[1] for a in acks], where="post", color="#2ca02c", linewidth=1.0,
                    label="ACK")
            ax.step(xs, [a[1] + a[2] for a in acks], where="post", color="#bcbd22",
                    linewidth=1.0, label="ACK + window")
        ax.set_xlabel("time since first segment (s)")
        ax.set_ylabel("relative sequence number (bytes)")
        who = "client -> server" if d == 0 else "server -> client"
        ax.set_title(f"{self.title}  (time-sequence, {who})")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left")
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        fig.tight_layout()
        out = Path(path)
        try:
            fig.savefig(out)
        except OSError as exc:
            raise output_error(exc, f"write {out}") from None
        finally:
            plt.close(fig)
        return out


class PlotSink:
    """``--plot PNG`` as an output of :func:`rawlab.pipeline.run_tcp`: collects each stream's
    segments and, when the input ends, saves the graph of the stream that carried the most
    payload (or the one stream asked for). ``saved`` is (path, stream) once written."""

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self.streams: dict[int, TimeSequence] = {}
        self.saved: tuple[Path, int] | None = None

    def segment(self, seg: Segment, rec: object = None) -> None:
        ts = self.streams.get(seg.stream)
        if ts is None:
            ts = self.streams[seg.stream] = TimeSequence(seg.stream)
        ts.add(seg)

    def handshake(self, hs: object) -> None:
        pass

    def closed(self, ev: object) -> None:
        pass

    def close(self) -> None:
        if self.streams:
            best = max(self.streams.values(), key=lambda p: sum(p.bytes))
            self.saved = (best.save(self.path), best.stream)
