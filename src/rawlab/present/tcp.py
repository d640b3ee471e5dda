"""What `rawlab tcp` prints: NDJSON records, the connection table, a followed stream.

    from rawlab.present import tcp as ptcp
    out.write(ptcp.segment_json(seg))          # one NDJSON line (docs/json.md, "tcp")
    out.write(ptcp.connection_json(conn))
    ptcp.render_table(connections, out)        # one line per connection
    f = ptcp.Follow(stream=3); f.add(seg, payload); f.render(out)

As outputs of :func:`rawlab.pipeline.run_tcp` (sinks, one hook per event):
``JsonSink`` (segment and connection records), ``TableSink`` (the table, when
closed), ``LiveSink`` (events worth a line, as they happen) and ``FollowSink``; of
:func:`rawlab.pipeline.run_batches`: ``SummarySink`` (the table from the columnar
summary).

JSON lines are built by hand from ints and known words (no ``json.dumps`` per
segment): the values are ints, fixed strings, and hex for addresses' bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from rawlab.analysis.tcp import Connection, ConnectionClosed, Handshake, Segment
from rawlab.decode.tcp import flag_letters
from rawlab.present.fmt import endpoint, ip_text
from rawlab.present.processes import StreamOwners, label
from rawlab.records import Record

_FLAGS = [flag_letters(i) for i in range(512)]


_ANALYSIS_JSON: dict[tuple[str, ...], str] = {(): "[]"}


def _analysis(names: tuple[str, ...]) -> str:
    got = _ANALYSIS_JSON.get(names)
    if got is None:
        got = _ANALYSIS_JSON[names] = json.dumps(list(names))
    return got


def _opt(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, tuple):
        return [_opt(x) for x in v]
    return v


def _n(v: int | None) -> str:
    return "null" if v is None else str(v)


def segment_json(s: Segment) -> str:
    """The ``segment`` NDJSON record (with its newline)."""
    opts = s.options
    tail = ""
    if opts:
        if len(opts) == 1 and "ts" in opts:
            tv, te = opts["ts"]
            tail = f', "options": {{"ts": [{tv}, {te}]}}'
        else:
            tail = ', "options": ' + json.dumps({k: _opt(v) for k, v in opts.items()})
    return (
        f'{{"type": "segment", "frame": {s.frame}, "ts_ns": {s.ts_ns}, "stream": {s.stream}, '
        f'"dir": {s.dir}, "src": "{ip_text(s.src_addr)}", "sport": {s.src_port}, '
        f'"dst": "{ip_text(s.dst_addr)}", "dport": {s.dst_port}, "seq": {s.seq}, '
        f'"ack": {s.ack}, "seq_rel": {s.seq_rel}, "ack_rel": {s.ack_rel}, '
        f'"next_seq_rel": {s.next_seq_rel}, "flags": "{_FLAGS[s.flags]}", "len": {s.len}, '
        f'"window": {s.window}, "window_raw": {s.window_raw}, '
        f'"checksum_status": "{s.checksum_status}", "analysis": {_analysis(s.analysis)}, '
        f'"dup_ack_num": {_n(s.dup_ack_num)}, "dup_ack_frame": {_n(s.dup_ack_frame)}, '
        f'"acked_frame": {_n(s.acked_frame)}, "ack_rtt_ns": {_n(s.ack_rtt_ns)}, '
        f'"bytes_in_flight": {_n(s.bytes_in_flight)}, '
        f'"capture_loss": {"true" if s.capture_loss else "false"}{tail}}}\n'
    )


def segments_json(segs: list[Segment]) -> str:
    """:func:`segment_json` of each segment, in order, in one compiled loop
    (:func:`rawlab._kernels.segments_json`: ~0.3 µs a record against ~2.5); a record it
    does not write itself (options other than none or timestamps only, addresses that are
    not bytes) it asks :func:`segment_json` for."""
    from rawlab._kernels import segments_json as compiled

    return compiled(segs, _FLAGS, _analysis, segment_json)


def connection_record(c: Connection) -> dict[str, Any]:
    def side(i: int) -> dict[str, Any]:
        st, op = c.stats[i], c.options[i]
        return {
            "segments": st.segments, "bytes": st.bytes, "retransmissions": st.retransmissions,
            "rtt_min_ns": st.rtt_min_ns, "rtt_avg_ns": st.rtt_avg_ns, "rtt_max_ns": st.rtt_max_ns,
            "flags_seen": _FLAGS[st.flags_seen],
            "options": {"mss": op.mss, "wscale": op.wscale, "sack_perm": op.sack_perm,
                        "timestamps": op.timestamps, "ecn": op.ecn},
        }

    return {
        "type": "connection", "stream": c.stream, "family": c.family,
        "client": ip_text(c.client[0]), "client_port": c.client[1],
        "server": ip_text(c.server[0]), "server_port": c.server[1],
        "state": c.state, "history": c.history, "closed": c.closed, "irtt_ns": c.irtt_ns,
        "first_ts_ns": c.first_ts_ns, "last_ts_ns": c.last_ts_ns,
        "first_frame": c.first_frame, "last_frame": c.last_frame,
        "completeness": c.completeness,
        "client_to_server": side(0), "server_to_client": side(1),
        "analysis": dict(sorted(c.analysis_counts.items())),
    }


def connection_json(c: Connection) -> str:
    return json.dumps(connection_record(c)) + "\n"


def _ms(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.3f}"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def render_table(conns: Sequence[Connection], out: TextIO,
                 owners: StreamOwners | None = None) -> None:
    """One line per connection: endpoints (and, with `owners`, the process at each end),
    state, history, iRTT, bytes, retransmissions, TCP flags seen each way and the
    expert flags counted."""
    if not conns:
        out.write("no TCP connections\n")
        return
    who = owners is not None and bool(owners.by_stream)
    rows = [("stream", "client", "server", "state", "history", "irtt ms", "c->s", "s->c",
             "rtx", "flags c/s", "analysis")]
    if who:
        rows[0] = ("stream", "client", "client process", "server", "server process",
                   *rows[0][3:])
    for c in conns:
        an = ",".join(f"{k}={v}" for k, v in sorted(c.analysis_counts.items())
                      if k not in ("retransmission",))
        ends: tuple[str, ...] = (endpoint(*c.client), endpoint(*c.server))
        if who:
            assert owners is not None
            po = owners.get(c.stream)
            ends = (ends[0], label(po[0]) or "-", ends[1], label(po[1]) or "-")
        rows.append((
            str(c.stream), *ends, c.state,
            c.history or "-", _ms(c.irtt_ns), _size(c.stats[0].bytes), _size(c.stats[1].bytes),
            f"{c.stats[0].retransmissions}/{c.stats[1].retransmissions}",
            f"{_FLAGS[c.stats[0].flags_seen] or '-'}/{_FLAGS[c.stats[1].flags_seen] or '-'}",
            an or "-",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    left = (1, 2, 3, 4, 6, 11) if who else (1, 2, 4, 9)
    for r in rows:
        cells = [r[i].ljust(widths[i]) if i in left else r[i].rjust(widths[i])
                 for i in range(len(widths))]
        out.write("  ".join(cells) + "  " + r[-1] + "\n")


class Follow:
    """The payload of one stream, each direction reassembled in sequence order
    (retransmitted bytes once, out-of-order segments held until the gap fills)."""

    def __init__(self, stream: int) -> None:
        self.stream = stream
        self.next: list[int | None] = [None, None]
        self.pending: list[dict[int, bytes]] = [{}, {}]
        self.chunks: list[tuple[int, int, bytes]] = []  # (dir, rel seq, bytes) in order
        self.ends: list[tuple[str, str]] = []

    def add(self, seg: Segment, payload: bytes) -> None:
        if seg.stream != self.stream:
            return
        if not self.ends:
            if seg.dir == 0:
                self.ends = [(endpoint(seg.src_addr, seg.src_port),
                              endpoint(seg.dst_addr, seg.dst_port))]
            else:
                self.ends = [(endpoint(seg.dst_addr, seg.dst_port),
                              endpoint(seg.src_addr, seg.src_port))]
        d = seg.dir
        start = seg.seq_rel + (1 if seg.flags & 0x02 else 0)
        if self.next[d] is None:
            self.next[d] = start
        if payload:
            self.pending[d].setdefault(start, payload)
        self._drain(d)
        if seg.flags & 0x03:  # SYN/FIN take one sequence number
            nxt = self.next[d]
            if nxt is not None and seg.next_seq_rel - 1 == nxt and not self.pending[d]:
                self.next[d] = nxt + 1

    def _drain(self, d: int) -> None:
        pend = self.pending[d]
        nxt = self.next[d]
        assert nxt is not None
        while pend:
            s = next((k for k in pend if k <= nxt), None)
            if s is None:
                break  # a gap: wait for the segment that fills it
            data = pend.pop(s)
            if s + len(data) > nxt:
                self.chunks.append((d, nxt, data[nxt - s:]))
                nxt = s + len(data)
        self.next[d] = nxt

    def render(self, out: TextIO) -> None:
        if not self.ends:
            out.write(f"stream {self.stream}: no segments\n")
            return
        cli, srv = self.ends[0]
        names = (f"{cli} -> {srv}", f"{srv} -> {cli}")
        total = [0, 0]
        for d, seq, data in self.chunks:
            total[d] += len(data)
            out.write(f"=== {names[d]}  seq {seq}  {len(data)} bytes\n")
            text = data.decode("utf-8", "backslashreplace")
            out.write(text if text.endswith("\n") else text + "\n")
        for d in (0, 1):
            held = sum(len(v) for v in self.pending[d].values())
            gap = f", {held} bytes after a gap never filled" if held else ""
            out.write(f"=== {names[d]}: {total[d]} bytes in order{gap}\n")


def live_line(ev: Any) -> str | None:
    """What live mode prints as it happens: a handshake completing, an expert flag,
    a connection ending. None for segments without news."""
    if type(ev) is Segment:
        if not ev.analysis and not ev.capture_loss:
            return None
        what = ", ".join(ev.analysis) + (" (capture loss)" if ev.capture_loss else "")
        return (f"{_clock(ev.ts_ns)} stream {ev.stream} frame {ev.frame}: {what} — "
                f"{endpoint(ev.src_addr, ev.src_port)} > "
                f"{endpoint(ev.dst_addr, ev.dst_port)} seq {ev.seq_rel} len {ev.len}")
    if isinstance(ev, Handshake):
        return f"stream {ev.stream}: handshake complete (frames " \
               f"{', '.join(map(str, ev.frames))}), iRTT {_ms(ev.irtt_ns)} ms"
    if isinstance(ev, ConnectionClosed):
        c = ev.connection
        return (f"{_clock(c.last_ts_ns)} stream {c.stream} ended ({c.closed}): "
                f"{endpoint(*c.client)} > {endpoint(*c.server)} {c.state} "
                f"{c.history}, {_size(c.stats[0].bytes)} / {_size(c.stats[1].bytes)}")
    return None


def _clock(ts_ns: int) -> str:
    from rawlab.present.packet import timestamp

    return timestamp(ts_ns)


# ---- sinks: the outputs of rawlab.pipeline.run_tcp ----------------------------------

class _Sink:
    """Hooks that do nothing: a sink overrides the ones it needs."""

    def segment(self, seg: Segment, rec: Record) -> None:
        pass

    def handshake(self, hs: Handshake) -> None:
        pass

    def closed(self, ev: ConnectionClosed) -> None:
        pass

    def close(self) -> None:
        pass


class JsonSink(_Sink):
    """NDJSON: a ``segment`` record per segment, a ``connection`` record as each ends.

    ``hold``: segments kept to be written together (:func:`segments_json`), for a file;
    1 (live) writes each at once. A connection record, the end and Ctrl-C (``close``)
    write what is held first, so the order is the analyser's."""

    def __init__(self, out: TextIO, hold: int = 1) -> None:
        self.out = out
        self._write = out.write
        self.owners = StreamOwners()
        self.hold = max(1, hold)
        self._held: list[Segment] = []

    def segment(self, seg: Segment, rec: Record) -> None:
        held = self._held
        held.append(seg)
        if len(held) >= self.hold:
            self._flush_held()
        if rec is not None and rec.owners is not None:
            self.owners.note(seg.stream, seg.dir, rec.owners)

    def _flush_held(self) -> None:
        held = self._held
        text = segments_json(held) if len(held) > 1 else segment_json(held[0])
        self._held = []  # (rendered: an interrupt before this leaves them for close())
        self._write(text)

    def closed(self, ev: ConnectionClosed) -> None:
        if self._held:
            self._flush_held()
        if ev.stream in self.owners.by_stream:  # --processes, or a file that says
            rec = connection_record(ev.connection)
            rec["process"] = self.owners.json(ev.stream)
            self._write(json.dumps(rec) + "\n")
        else:
            self._write(connection_json(ev.connection))

    def close(self) -> None:
        if self._held:
            self._flush_held()
        self.out.flush()


class TableSink(_Sink):
    """The connection table, printed when the input ends (one row per stream)."""

    def __init__(self, out: TextIO, *, blank_line: bool = False) -> None:
        self.out = out
        self.blank_line = blank_line
        self.connections: dict[int, Connection] = {}
        self.owners = StreamOwners()

    def segment(self, seg: Segment, rec: Record) -> None:
        if rec is not None and rec.owners is not None:
            self.owners.note(seg.stream, seg.dir, rec.owners)

    def closed(self, ev: ConnectionClosed) -> None:
        self.connections[ev.stream] = ev.connection

    def close(self) -> None:
        if self.blank_line:
            self.out.write("\n")
        render_table([self.connections[k] for k in sorted(self.connections)], self.out,
                     self.owners)
        self.out.flush()


class SummarySink:
    """The connection table from batches (:func:`rawlab.pipeline.run_batches`): the
    columnar summary (:mod:`rawlab.analysis.tcp.columns`, tcptrace's figures), printed
    when the input ends. Its ``rtx`` column counts tcptrace's retransmitted segments and
    its analysis column the summary's counts (out_of_order, zero_window_probe,
    zero_window, sack, dsack); :class:`TableSink` prints the exact analyser's."""

    def __init__(self, out: TextIO) -> None:
        from rawlab.analysis.tcp.columns import ConnSummary

        self.out = out
        self.summary = ConnSummary()

    def batch(self, batch: Any, rows: int | None = None) -> None:
        self.summary.add(batch, rows)

    def close(self) -> None:
        owners = StreamOwners()
        for stream, direction, who in self.summary.owners:
            owners.note(stream, direction, who)
        render_table(self.summary.connections(), self.out, owners)
        self.out.flush()


class LiveSink(_Sink):
    """Live mode: a line as it happens for each handshake, expert flag and connection end
    (not for the connections merely still open when the capture stops)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._ts = 0  # time of the last segment: a handshake completes with it

    def _put(self, text: str | None) -> None:
        if text:
            self.out.write(text + "\n")
            self.out.flush()

    def segment(self, seg: Segment, rec: Record) -> None:
        self._ts = seg.ts_ns
        if seg.analysis or seg.capture_loss:
            self._put(live_line(seg))

    def handshake(self, hs: Handshake) -> None:
        self._put(f"{_clock(self._ts)} {live_line(hs)}")

    def closed(self, ev: ConnectionClosed) -> None:
        if ev.reason != "end":
            self._put(live_line(ev))


class FollowSink(_Sink):
    """``--follow N``: stream N's payload, each direction in sequence order, printed at the
    end. Each segment's bytes are taken from its record as it passes (no second read)."""

    def __init__(self, out: TextIO, stream: int) -> None:
        from rawlab.decode.dispatch import Decoder

        self.out = out
        self.follow = Follow(stream)
        self._decode = Decoder().decode
        self.seen = False

    def segment(self, seg: Segment, rec: Record) -> None:
        if seg.stream != self.follow.stream:
            return
        self.seen = True
        payload = b""
        if seg.len:
            lay = self._decode(rec.data, rec.linktype).layer("tcp")
            payload = bytes(lay.payload)[:seg.len] if lay is not None else b""
        self.follow.add(seg, payload)

    def close(self) -> None:
        self.follow.render(self.out)
        self.out.flush()
