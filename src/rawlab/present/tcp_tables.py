"""The TCP analyser's events as tables: ``connections`` and ``segments`` (docs/tables.md).

    sink = TcpTableSink("x.pcap", conns.append, segs.append)    # a run_tcp event sink
    conns, segs = tcp_tables("x.pcap", warn)                     # a file's two tables

Rows come from the exact analyser (:mod:`rawlab.analysis.tcp`: one :class:`Segment` per
TCP segment, a :class:`Connection` summary when each connection closes), through
:func:`rawlab.pipeline.run_tcp`. :func:`tcp_tables` is the one place that turns a
capture into these tables, so that a columnar summary can replace the per-packet run
behind it without touching its callers (``rawlab sql``, ``rawlab tcp --parquet``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rawlab.analysis.tcp import ANALYSIS_NAMES, Connection, ConnectionClosed, Handshake, Segment
from rawlab.decode.tcp import flag_letters
from rawlab.present.fmt import ip_text
from rawlab.present.processes import StreamOwners
from rawlab.records import Record

if TYPE_CHECKING:
    import pyarrow as pa

ROWS = 65536  # segments gathered before a record batch is built

_SEG = (("file", "string"), ("frame", "uint64"), ("ts_ns", "int64"), ("time", "time"),
        ("stream", "uint32"), ("dir", "uint8"), ("family", "uint8"), ("src", "string"),
        ("sport", "uint16"), ("dst", "string"), ("dport", "uint16"), ("seq", "uint32"),
        ("ack", "uint32"), ("seq_rel", "int64"), ("ack_rel", "int64"),
        ("next_seq_rel", "int64"), ("flags", "uint16"), ("flags_text", "string"),
        ("len", "uint32"), ("window", "int64"), ("window_raw", "uint16"),
        ("window_scale", "int8"), ("checksum_status", "string"), ("analysis", "string"),
        *((name, "bool") for name in ANALYSIS_NAMES),
        ("ack_rtt_ns", "int64"), ("bytes_in_flight", "int64"), ("dup_ack_num", "int64"),
        ("dup_ack_frame", "uint64"), ("acked_frame", "uint64"), ("capture_loss", "bool"))

_SIDE = (("segments", "int64"), ("bytes", "int64"), ("retransmissions", "int64"),
         ("rtt_min_ns", "int64"), ("rtt_avg_ns", "int64"), ("rtt_max_ns", "int64"),
         ("flags", "string"))
_OPTS = (("mss", "uint16"), ("wscale", "uint8"), ("sack_perm", "bool"),
         ("timestamps", "bool"), ("ecn", "bool"))
_CONN = (("file", "string"), ("stream", "uint32"), ("family", "uint8"),
         ("client", "string"), ("client_port", "uint16"), ("server", "string"),
         ("server_port", "uint16"), ("state", "string"), ("history", "string"),
         ("closed", "string"), ("irtt_ns", "int64"), ("first_ts_ns", "int64"),
         ("last_ts_ns", "int64"), ("first_time", "time"), ("last_time", "time"),
         ("duration_ns", "int64"), ("first_frame", "uint64"), ("last_frame", "uint64"),
         ("completeness", "uint8"),
         *((f"{d}_{k}", t) for d in ("c2s", "s2c") for k, t in _SIDE),
         *((f"{e}_{k}", t) for e in ("client", "server") for k, t in _OPTS),
         *((name, "int64") for name in ANALYSIS_NAMES),
         *((f"{e}_{k}", t) for e in ("client", "server") for k, t in (
             ("process_state", "string"), ("pid", "int32"), ("comm", "string"))))


def _type(kind: str) -> Any:
    import pyarrow as pa

    if kind == "time":
        return pa.timestamp("us", tz="UTC")
    if kind == "string":
        return pa.dictionary(pa.int32(), pa.string())
    return pa.bool_() if kind == "bool" else getattr(pa, kind)()


def _schema(cols: tuple[tuple[str, str], ...]) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([pa.field(n, _type(k)) for n, k in cols]
                     + [pa.field("date", pa.date32()), pa.field("hour", pa.int32())])


def segments_schema() -> pa.Schema:
    return _schema(_SEG)


def connections_schema() -> pa.Schema:
    return _schema(_CONN)


def _batch(cols: tuple[tuple[str, str], ...], values: dict[str, list[Any]],
           ts: str) -> pa.RecordBatch:
    """Lists of values (time columns: nanoseconds) as a record batch with date and hour."""
    import numpy as np
    import pyarrow as pa

    arrays = []
    for name, kind in cols:
        v = values[name] if kind != "time" else None
        if kind == "time":
            src = values["ts_ns" if name == "time" else name.replace("_time", "_ts_ns")]
            arrays.append(pa.array(np.asarray(src, np.int64) // 1000, _type(kind)))
        elif kind == "string":
            arrays.append(pa.array(v, pa.string()).dictionary_encode())
        else:
            arrays.append(pa.array(v, _type(kind)))
    t = np.asarray(values[ts], np.int64)
    arrays.append(pa.array((t // 86_400_000_000_000).astype(np.int32), pa.date32()))
    arrays.append(pa.array(((t // 3_600_000_000_000) % 24).astype(np.int32)))
    return pa.RecordBatch.from_arrays(arrays, schema=_schema(cols))


class TcpTableSink:
    """An event sink of :func:`rawlab.pipeline.run_tcp` that hands record batches of the
    connections and segments tables to `connections` and `segments` (at most
    :data:`ROWS` segments each; the rest when closed). `file`: the ``file`` column."""

    def __init__(self, file: str | None, connections: Callable[[pa.RecordBatch], Any],
                 segments: Callable[[pa.RecordBatch], Any]) -> None:
        self.file = file
        self._emit_conn = connections
        self._emit_seg = segments
        self.owners = StreamOwners()
        self._segs: dict[str, list[Any]] = {n: [] for n, _ in _SEG}
        self._conns: dict[str, list[Any]] = {n: [] for n, _ in _CONN}
        self._flags = [flag_letters(i) for i in range(512)]
        self.segment_rows = 0
        self.connection_rows = 0
        s = self._segs
        self._put = [s[n].append for n, _ in _SEG if n not in ANALYSIS_NAMES]
        self._marks = [s[n].append for n in ANALYSIS_NAMES]

    def segment(self, seg: Segment, rec: Record | None) -> None:
        (file, frame, ts, _time, stream, d, fam, src, sport, dst, dport, seq, ack, seq_rel,
         ack_rel, nxt, flags, ftext, ln, win, win_raw, wscale, csum, an, rtt, bif, dupn, dupf,
         acked, loss) = self._put
        file(self.file)
        frame(seg.frame)
        ts(seg.ts_ns)
        stream(seg.stream)
        d(seg.dir)
        fam(seg.family)
        src(ip_text(seg.src_addr))
        sport(seg.src_port)
        dst(ip_text(seg.dst_addr))
        dport(seg.dst_port)
        seq(seg.seq)
        ack(seg.ack)
        seq_rel(seg.seq_rel)
        ack_rel(seg.ack_rel)
        nxt(seg.next_seq_rel)
        flags(seg.flags)
        ftext(self._flags[seg.flags & 0x1FF])
        ln(seg.len)
        win(seg.window)
        win_raw(seg.window_raw)
        wscale(seg.window_scale)
        csum(str(seg.checksum_status))
        names = seg.analysis
        an(",".join(names))
        for name, mark in zip(ANALYSIS_NAMES, self._marks, strict=True):
            mark(name in names)
        rtt(seg.ack_rtt_ns)
        bif(seg.bytes_in_flight)
        dupn(seg.dup_ack_num)
        dupf(seg.dup_ack_frame)
        acked(seg.acked_frame)
        loss(seg.capture_loss)
        if rec is not None and rec.owners is not None:
            self.owners.note(seg.stream, seg.dir, rec.owners)
        self.segment_rows += 1
        if len(self._segs["frame"]) >= ROWS:
            self._flush_segments()

    def handshake(self, hs: Handshake) -> None:
        pass

    def closed(self, ev: ConnectionClosed) -> None:
        c: Connection = ev.connection
        v = self._conns
        row: dict[str, Any] = {
            "file": self.file, "stream": c.stream, "family": c.family,
            "client": ip_text(c.client[0]), "client_port": c.client[1],
            "server": ip_text(c.server[0]), "server_port": c.server[1], "state": c.state,
            "history": c.history, "closed": c.closed, "irtt_ns": c.irtt_ns,
            "first_ts_ns": c.first_ts_ns, "last_ts_ns": c.last_ts_ns,
            "duration_ns": c.last_ts_ns - c.first_ts_ns, "first_frame": c.first_frame,
            "last_frame": c.last_frame, "completeness": c.completeness,
        }
        for d, st in zip(("c2s", "s2c"), c.stats, strict=True):
            row.update({f"{d}_segments": st.segments, f"{d}_bytes": st.bytes,
                        f"{d}_retransmissions": st.retransmissions,
                        f"{d}_rtt_min_ns": st.rtt_min_ns, f"{d}_rtt_avg_ns": st.rtt_avg_ns,
                        f"{d}_rtt_max_ns": st.rtt_max_ns,
                        f"{d}_flags": self._flags[st.flags_seen & 0x1FF]})
        for e, op in zip(("client", "server"), c.options, strict=True):
            row.update({f"{e}_{k}": getattr(op, k) for k, _ in _OPTS})
        for name in ANALYSIS_NAMES:
            row[name] = c.analysis_counts.get(name, 0)
        for e, o in zip(("client", "server"), self.owners.get(c.stream), strict=True):
            row[f"{e}_process_state"] = None if o is None else o.state
            row[f"{e}_pid"] = None if o is None else o.pid
            row[f"{e}_comm"] = None if o is None else o.comm
        for name, _ in _CONN:
            if name not in ("first_time", "last_time"):
                v[name].append(row[name])
        self.connection_rows += 1

    def _flush_segments(self) -> None:
        if self._segs["frame"]:
            self._emit_seg(_batch(_SEG, self._segs, "ts_ns"))
            for lst in self._segs.values():
                lst.clear()

    def close(self) -> None:
        self._flush_segments()
        if self._conns["stream"]:
            self._emit_conn(_batch(_CONN, self._conns, "first_ts_ns"))
            for lst in self._conns.values():
                lst.clear()


def tcp_tables(path: str, warn: Callable[[str], None]
               ) -> tuple[list[pa.RecordBatch], list[pa.RecordBatch]]:
    """The connections and segments tables of one capture file (record batches). A file
    that cannot be read to its end gives the tables of what was read before the problem,
    and `warn` one line naming the file."""
    from rawlab import pipeline
    from rawlab.errors import RawlabError
    from rawlab.pcap.reader import open_file

    conns: list[pa.RecordBatch] = []
    segs: list[pa.RecordBatch] = []
    sink = TcpTableSink(path, conns.append, segs.append)
    try:
        with open_file(path) as cap:
            pipeline.run_tcp(cap, [sink])
    except RawlabError as exc:
        warn(f"{exc.message}; the rows before it are kept")
    return conns, segs
