"""Parquet outputs: the packets, connections and segments tables on disk (docs/tables.md).

    f = ParquetFile("x.parquet", schema)          # rows to .x.parquet.partial, renamed on close
    d = DatasetWriter("out/packets", "x")         # out/packets/date=2024-05-01/hour=13/x.parquet
    sink = PacketParquetSink(d, file="x.pcap")    # a batch sink and a packet sink (pipeline)
    sink = TcpParquetSink("out", "x", file=...)   # an event sink: out/connections, out/segments

Every file is written atomically: its rows go to a hidden file beside it
(``.NAME.partial``), which is renamed to NAME when it is complete, so a reader (DuckDB,
Spark, another ``rawlab sql``) never sees half a file under its final name, and a killed
writer leaves only a hidden file that every engine skips (names starting with ``.``).

A *dataset* is a directory per table, Hive-partitioned by the UTC date and hour of each
row's time (``date=YYYY-MM-DD/hour=HH``), so engines prune by time: ``WHERE date =
'2024-05-01' AND hour = 13`` reads only that hour's files. A capture's rows of one hour
go to one file named after the capture; converting the same capture again replaces it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rawlab.errors import Exit, RawlabError
from rawlab.present.tables import PacketTables
from rawlab.records import Interface, Record

if TYPE_CHECKING:
    import pyarrow as pa

    from rawlab.decode.columns import Batch
    from rawlab.decode.dispatch import Packet

HOUR_NS = 3_600_000_000_000
ROWS = 8192  # records a packet sink gathers before it builds a batch of them
GROUP_ROWS = 131072  # rows gathered into one Parquet row group (batches are ~2-8k rows)


def is_file_name(out: str) -> bool:
    """An output named ``*.parquet`` is one file; anything else is a dataset directory."""
    return out.endswith(".parquet")


class ParquetFile:
    """One Parquet file, written under a hidden name and renamed when closed."""

    def __init__(self, path: str, schema: pa.Schema) -> None:
        import pyarrow.parquet as pq

        self.path = path
        head, tail = os.path.split(path)
        self.tmp = os.path.join(head, f".{tail}.partial")
        try:
            if head:
                os.makedirs(head, exist_ok=True)
            # zstd: half snappy's size for the same time; dictionaries for the text
            # columns only (numbers: plain, far cheaper to write)
            texts = [f.name for f in schema if str(f.type).startswith("dictionary")]
            self._w: Any = pq.ParquetWriter(self.tmp, schema, compression="zstd",
                                            use_dictionary=texts)
        except OSError as exc:
            raise RawlabError(f"cannot write {path}: {exc.strerror}", Exit.OUTPUT) from exc
        self.rows = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0

    def write(self, rb: pa.RecordBatch) -> None:
        """Add rows; they are written as row groups of :data:`GROUP_ROWS` (one row group
        per batch would make a file engines read slowly, and cost the writer more)."""
        if len(rb):
            self._pending.append(rb)
            self._pending_rows += len(rb)
            self.rows += len(rb)
            if self._pending_rows >= GROUP_ROWS:
                self._write_group()

    def _write_group(self) -> None:
        import pyarrow as pa

        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending)
        self._pending, self._pending_rows = [], 0
        try:
            self._w.write_table(table, row_group_size=len(table))
        except BaseException as exc:
            self.discard()
            if isinstance(exc, OSError):
                raise RawlabError(f"cannot write {self.path}: {exc.strerror}",
                                  Exit.OUTPUT) from exc
            raise

    def close(self) -> None:
        """Finish the file and give it its name (a file that failed is removed instead)."""
        if self._w is None:
            return
        self._write_group()
        w, self._w = self._w, None
        try:
            w.close()
        except BaseException:
            _remove(self.tmp)
            raise
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        """Drop the file: nothing appears under its name."""
        self._pending = []
        w, self._w = self._w, None
        if w is not None:
            try:
                w.close()
            finally:
                _remove(self.tmp)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class DatasetWriter:
    """One table's Hive-partitioned dataset under `root`: each batch's rows split by the
    UTC hour of their `time` column (nanoseconds), one file per hour named `stem`.parquet
    (``root/date=YYYY-MM-DD/hour=HH/stem.parquet``). The batches carry ``date`` and
    ``hour`` columns; the files do not (the directory names hold them)."""

    def __init__(self, root: str, stem: str, time: str = "ts_ns") -> None:
        self.root = root
        self.stem = stem
        self.time = time
        self.files: dict[int, ParquetFile] = {}
        self.written: list[str] = []

    def write(self, rb: pa.RecordBatch) -> None:
        if not len(rb):
            return
        import pyarrow as pa

        keep = [i for i, n in enumerate(rb.schema.names) if n not in ("date", "hour")]
        body = pa.RecordBatch.from_arrays([rb.column(i) for i in keep],
                                          schema=pa.schema([rb.schema.field(i) for i in keep]))
        hours = rb.column(self.time).to_numpy(zero_copy_only=False)
        hours = hours.astype("datetime64[ns]").astype(np.int64) // HOUR_NS \
            if hours.dtype.kind == "M" else hours // HOUR_NS
        lo, hi = int(hours.min()), int(hours.max())
        if lo == hi:
            self._file(lo, body.schema).write(body)
            return
        for h in np.unique(hours).tolist():
            self._file(h, body.schema).write(body.filter(pa.array(hours == h)))

    def _file(self, hour: int, schema: pa.Schema) -> ParquetFile:
        f = self.files.get(hour)
        if f is None:
            t = time.gmtime(hour * 3600)
            part = f"date={time.strftime('%Y-%m-%d', t)}/hour={t.tm_hour:02d}"
            f = self.files[hour] = ParquetFile(
                os.path.join(self.root, part, f"{self.stem}.parquet"), schema)
        return f

    def close(self) -> None:
        for f in self.files.values():
            f.close()
            self.written.append(f.path)
        self.files.clear()


class PacketParquetSink:
    """The packets table of a source, to a Parquet file or dataset (`out`: a
    :class:`ParquetFile` of :func:`packets_schema` with partitions, or a
    :class:`DatasetWriter`).

    A batch sink (``pipeline.run_batches``: a file's batches) and a packet sink
    (``pipeline.run``: records one by one, gathered into batches of :data:`ROWS`, for
    live captures and filtered reads); the rows are the same either way."""

    decodes = False

    def __init__(self, out: ParquetFile | DatasetWriter, *, file: str | None = None,
                 interface_name: Callable[[int], str | None] | None = None) -> None:
        from rawlab.decode.columns import RecordBatcher

        self.out = out
        self.tables = PacketTables(file, interface_name=interface_name)
        self._batcher = RecordBatcher()
        self._recs: list[Record] = []
        self._frames: list[int] = []
        self._ifaces: list[Interface | None] = []
        self.rows = 0

    def batch(self, batch: Batch, rows: int | None = None) -> None:
        rb = self.tables.table(batch, rows)
        self.rows += len(rb)
        self.out.write(rb)

    def packet(self, frame: int, rec: Record, pkt: Packet | None,
               iface: Interface | None) -> None:
        self._recs.append(rec)
        self._frames.append(frame)
        if len(self._recs) >= ROWS:
            self.flush()

    def flush(self) -> None:
        recs = self._recs
        if not recs:
            return
        batch = self._batcher.batch(recs, self._frames)
        self._recs, self._frames = [], []
        rb = self.tables.table(batch, records=recs)
        self.rows += len(rb)
        self.out.write(rb)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.out.close()


class RotatingParquet:
    """``capture -G``: a new packets file (or dataset file) every `seconds` of capture
    time, as :class:`rawlab.pcap.writer.RotatingWriter` names them (a strftime pattern;
    without one, a timestamp before the extension); each one complete when renamed.

    A packet sink (``pipeline.run``); ``files`` lists every file written."""

    decodes = False

    def __init__(self, out: str, seconds: int, *, files: int | None = None,
                 interface_name: Callable[[int], str | None] | None = None) -> None:
        from rawlab.pcap.writer import RotatingWriter

        self.interface_name = interface_name
        self.dataset = not is_file_name(out)
        self.out = out
        self.files: list[str] = []
        self._sink: PacketParquetSink | None = None
        self._frame = 0
        pattern = os.path.join(out, "capture") if self.dataset else out
        self._rot = RotatingWriter(pattern, seconds, files=files, opener=self._open)

    def _open(self, name: str) -> _RecordWriter:
        if self._sink is not None:
            self._close_sink()
        if self.dataset:
            target: Any = DatasetWriter(os.path.join(self.out, "packets"),
                                        os.path.basename(name))
        else:
            target = ParquetFile(name, PacketTables().schema)
        self._sink = PacketParquetSink(target, interface_name=self.interface_name)
        return _RecordWriter(self._sink, self._close_sink, lambda: self._frame)

    def _close_sink(self) -> None:
        sink, self._sink = self._sink, None
        if sink is None:
            return
        sink.close()
        out = sink.out
        self.files += out.written if isinstance(out, DatasetWriter) else [out.path]

    def packet(self, frame: int, rec: Record, pkt: Packet | None,
               iface: Interface | None) -> None:
        self._frame = frame
        self._rot.write(rec, iface)

    def close(self) -> None:
        self._rot.close()


class _RecordWriter:
    """What RotatingWriter drives (write, flush, close) over a packet sink."""

    def __init__(self, sink: PacketParquetSink, close: Callable[[], None],
                 frame: Callable[[], int]) -> None:
        self.sink = sink
        self._close = close
        self._frame = frame

    def write(self, rec: Record, iface: Interface | None) -> None:
        self.sink.packet(self._frame(), rec, None, iface)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._close()

    @property
    def bytes(self) -> int:
        return 0


def packets_output(out: str, stem: str, *, file: str | None = None,
                   interface_name: Callable[[int], str | None] | None = None
                   ) -> PacketParquetSink:
    """The sink for ``--parquet OUT``: one file (``*.parquet``, with ``date`` and ``hour``
    columns) or the ``packets`` table of the dataset OUT (a file named `stem` per hour)."""
    target: ParquetFile | DatasetWriter
    if is_file_name(out):
        target = ParquetFile(out, PacketTables().schema)
    else:
        target = DatasetWriter(os.path.join(out, "packets"), stem)
    return PacketParquetSink(target, file=file, interface_name=interface_name)


def stem_of(path: str, taken: set[str]) -> str:
    """A capture's name without its directory and extension, made unique among `taken`."""
    base = os.path.basename(path) or "stdin"
    stem = base.rsplit(".", 1)[0] if "." in base[1:] else base
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}"
    taken.add(name)
    return name


class TcpParquetSink:
    """``rawlab tcp --parquet OUT``: the connections and segments tables (an event sink of
    ``pipeline.run_tcp``) into the datasets OUT/connections and OUT/segments, files named
    `stem`."""

    def __init__(self, out: str, stem: str, *, file: str | None = None) -> None:
        from rawlab.present.tcp_tables import TcpTableSink

        self.connections = DatasetWriter(os.path.join(out, "connections"), stem,
                                         time="first_ts_ns")
        self.segments = DatasetWriter(os.path.join(out, "segments"), stem)
        self._sink = TcpTableSink(file, self.connections.write, self.segments.write)
        self.segment = self._sink.segment
        self.handshake = self._sink.handshake
        self.closed = self._sink.closed

    @property
    def counts(self) -> tuple[int, int]:
        return self._sink.connection_rows, self._sink.segment_rows

    def close(self) -> None:
        try:
            self._sink.close()
        finally:
            self.connections.close()
            self.segments.close()

    @property
    def written(self) -> Sequence[str]:
        return self.connections.written + self.segments.written


def write_packets(inputs: Sequence[str], out: str, warn: Callable[[str], None], *,
                  expression: str | None = None, count: int | None = None) -> tuple[int, int]:
    """``rawlab read FILE... --parquet OUT``: the packets table of every capture named
    (directories walked) to OUT; (rows written, captures read). The columnar path reads
    whole batches; a filter (or standard input) takes the per-packet path. A capture
    that cannot be read to its end keeps its rows before the problem (`warn` names it).
    """
    from rawlab import pipeline
    from rawlab.decode.columns import open_batches
    from rawlab.present.tables import capture_files

    files = capture_files(inputs)
    one = ParquetFile(out, PacketTables().schema) if is_file_name(out) else None
    taken: set[str] = set()
    rows = 0
    try:
        for path in files:
            target: ParquetFile | DatasetWriter = one if one is not None else DatasetWriter(
                os.path.join(out, "packets"), stem_of(path, taken))
            sink = _Shared(target) if one is not None else target
            left = None if count is None else count - rows
            ps = PacketParquetSink(sink, file=None if path == "-" else path)
            try:
                if expression or path == "-":
                    _per_packet(path, ps, expression, left)
                else:
                    with open_batches(path) as src:
                        pipeline.run_batches(src, [ps], count=left)
            except RawlabError as exc:
                if exc.code != Exit.BAD_INPUT:
                    raise
                warn(f"{exc.message}; the rows before it are kept")
            rows += ps.rows
            if count is not None and rows >= count:
                break
    finally:
        if one is not None:
            one.close()
    return rows, len(files)


class _Shared:
    """One file that several captures' sinks write into: closing a sink leaves it open."""

    def __init__(self, target: ParquetFile) -> None:
        self.target = target
        self.write = target.write

    def close(self) -> None:
        pass


def _per_packet(path: str, ps: PacketParquetSink, expression: str | None,
                count: int | None) -> None:
    import sys

    from rawlab import pipeline
    from rawlab.pcap.reader import open_file

    with open_file(sys.stdin.buffer if path == "-" else path) as cap:
        ps.tables.interface_name = (lambda i: cap.interfaces[i].name
                                    if i < len(cap.interfaces) else None)
        pipeline.run(cap, [ps], expression=expression, count=count)
