"""SQL over captures: DuckDB in process, over the views ``packets``, ``connections`` and
``segments`` (docs/tables.md).

    con = open_views(["day1/", "x.pcap", "out.parquet"], sql, warn)   # a duckdb connection
    write_result(con.execute(sql), sys.stdout, "table")                # or "json", "csv"

Where the rows come from, per input:

* a capture file (pcap/pcapng), or a directory of them (walked): read straight from the
  file through Arrow streams (:func:`rawlab.present.tables.packets_reader`, a
  ``RecordBatchReader``: nothing is copied to disk); ``connections`` and ``segments``
  come from the TCP analyser, one file at a time, only when the query names them;
* a Parquet dataset (a directory written by ``--parquet DIR``: ``packets/``,
  ``connections/``, ``segments/``, Hive-partitioned by date and hour): DuckDB reads it
  (``read_parquet``, partitions pruned by a ``WHERE`` on ``date``/``hour``);
* a ``*.parquet`` file: the packets table in one file (``read --parquet x.parquet``).

A stream is read once: a view the query names more than once (a self-join) is read into
memory first. Times are UTC (the session's time zone). A file that cannot be read to its
end gives every row before the problem and one warning naming the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from rawlab.errors import Exit, RawlabError

if TYPE_CHECKING:
    import duckdb

VIEWS = ("packets", "connections", "segments")


def _named(sql: str) -> dict[str, int]:
    """How often the query names each view (outside string literals)."""
    bare = re.sub(r"'(?:[^']|'')*'", "''", sql)
    return {v: len(re.findall(rf"(?<![\w.]){v}(?!\w)", bare, re.IGNORECASE)) for v in VIEWS}


def _classify(inputs: Sequence[str]) -> tuple[dict[str, list[str]], list[str]]:
    """(Parquet sources by view, capture paths)."""
    parquet: dict[str, list[str]] = {v: [] for v in VIEWS}
    captures: list[str] = []
    for p in inputs:
        if not os.path.exists(p):
            raise RawlabError(f"{p}: no such file or directory", Exit.BAD_INPUT)
        if os.path.isdir(p) and any(os.path.isdir(os.path.join(p, v)) for v in VIEWS):
            for v in VIEWS:
                if os.path.isdir(os.path.join(p, v)):
                    parquet[v].append(os.path.join(p, v, "**", "*.parquet"))
        elif p.endswith(".parquet"):
            parquet["packets"].append(p)
        else:
            captures.append(p)
    return parquet, captures


def open_views(inputs: Sequence[str], sql: str, warn: Callable[[str], None]
               ) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views the query names, over `inputs`."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    parquet, captures = _classify(inputs)
    named = _named(sql)
    for view in VIEWS:
        if not named[view]:
            continue
        parts = []
        for hive in (True, False):  # datasets (date, hour from directory names); files
            got = [p for p in parquet[view] if p.endswith("*.parquet") == hive]
            if got:
                parts.append(f"SELECT * FROM read_parquet([{', '.join(map(_quote, got))}], "
                             f"hive_partitioning = {str(hive).lower()}, union_by_name = true)")
        if captures:
            stream: Any = _capture_view(view, captures, warn)
            if named[view] > 1:
                stream = stream.read_all()
            con.register(f"_{view}_captures", stream)
            parts.append(f"SELECT * FROM _{view}_captures")
        if parts:
            run(con, f"CREATE VIEW {view} AS " + " UNION ALL BY NAME ".join(parts))
    return con


def _capture_view(view: str, captures: list[str], warn: Callable[[str], None]) -> Any:
    import pyarrow as pa

    from rawlab.present.tables import capture_files, packets_reader

    if view == "packets":
        return packets_reader(captures, warn)
    from rawlab.present import tcp_tables as tt

    schema = tt.connections_schema() if view == "connections" else tt.segments_schema()
    files = capture_files(captures)

    def batches() -> Any:
        for path in files:
            conns, segs = tt.tcp_tables(path, warn)
            yield from conns if view == "connections" else segs

    return pa.RecordBatchReader.from_batches(schema, batches())


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def run(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """Run the query; a DuckDB error is one line (its message), exit 5."""
    import duckdb

    try:
        return con.execute(sql)
    except duckdb.Error as exc:
        raise RawlabError(f"query failed: {_one_line(str(exc))}", Exit.BAD_INPUT) from exc


def _one_line(msg: str) -> str:
    head = msg.split("\n\n", maxsplit=1)[0]
    return " ".join(line.strip() for line in head.splitlines() if line.strip())


# ---- writing the result ---------------------------------------------------------------------

def _value(v: Any) -> Any:
    """A result value as JSON data: times and dates in ISO 8601, decimals as numbers."""
    import datetime
    import decimal

    if isinstance(v, datetime.datetime | datetime.date | datetime.time):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, datetime.timedelta):
        return v.total_seconds()
    if isinstance(v, bytes):
        return v.hex()
    return v


def _text(v: Any) -> str:
    if v is None:
        return "NULL"
    v = _value(v)
    return str(v).lower() if isinstance(v, bool) else str(v)


def write_result(cur: Any, out: TextIO, form: str = "table") -> int:
    """Every row of the result to `out` as a table (columns aligned, numbers right),
    NDJSON (``json``: one object per row) or CSV (``csv``: a header line); the row count."""
    names = [d[0] for d in cur.description]
    n = 0
    if form == "json":
        from rawlab.present.fmt import json_line

        while rows := cur.fetchmany(8192):
            out.write("".join(json_line({k: _value(v) for k, v in zip(names, r, strict=True)})
                              for r in rows))
            n += len(rows)
        return n
    if form == "csv":
        import csv

        w = csv.writer(out, lineterminator="\n")
        w.writerow(names)
        while rows := cur.fetchmany(8192):
            w.writerows([["" if v is None else _value(v) for v in r] for r in rows])
            n += len(rows)
        return n
    rows = cur.fetchall()
    cells = [[_text(v) for v in r] for r in rows]
    right = [bool(rows) and all(isinstance(r[i], int | float) or r[i] is None for r in rows)
             for i in range(len(names))]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(names)]

    def line(vals: list[str]) -> str:
        return "  ".join(v.rjust(w) if r else v.ljust(w)
                         for v, w, r in zip(vals, widths, right, strict=True)).rstrip() + "\n"

    out.write(line(names))
    out.writelines(line(c) for c in cells)
    return len(rows)
