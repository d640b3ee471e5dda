"""bench/sql: Parquet out and SQL in, one run, same files.

    .venv/bin/python bench/sql/run.py [--packets 500000] [--copies 20]
                                      [--pcaptoparquet PATH] [--no-peers]

1. Writing Parquet from a pcap of --packets Ethernet/IPv4/TCP packets (bench/read's
   file: checksums filled in, a few UDP and ARP frames): `rawlab read FILE --parquet
   OUT.parquet` against `pcaptoparquet -i FILE -o OUT -f parquet` (PyPI; not a project
   dependency: install it in a virtualenv of its own, `python3 -m venv /tmp/p2p &&
   /tmp/p2p/bin/pip install pcaptoparquet`, and pass --pcaptoparquet
   /tmp/p2p/bin/pcaptoparquet) and against `tshark -T ek -r FILE` piped to DuckDB's
   `read_ndjson` writing Parquet (the frame's layers kept as a JSON column). Every
   command runs whole, process start included.
2. The README's queries over --copies x --packets rows: the packets table written above
   and `rawlab tcp FILE --parquet`'s segments and connections, copied into a dataset of
   --copies hourly partitions (10M packets by default), each timed as `rawlab sql QUERY
   DATASET` (process start included), and the top-talkers query straight from the pcap
   (Arrow streams, no Parquet).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def _build(path: Path, n: int) -> None:
    spec = importlib.util.spec_from_file_location("bench_read", ROOT / "bench/read/run.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.build(path, n)


def timed(cmd: list[str] | str, **kw: object) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   **kw)  # type: ignore[call-overload]
    return time.perf_counter() - t


def rows_of(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def queries() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    return dict(re.findall(r"\n([^\n]+):\n\n```sql\n(.*?)```", text, re.S))


def find_pcaptoparquet(given: str | None) -> str | None:
    for c in (given, shutil.which("pcaptoparquet"), "/tmp/p2p/bin/pcaptoparquet"):
        if c and os.access(c, os.X_OK):
            return c
    return None


def write_rows(pcap: Path, d: Path, n: int, p2p: str | None, peers: bool) -> list[tuple]:
    out: list[tuple] = []
    ours = d / "rawlab.parquet"
    t = timed([RAWLAB, "read", str(pcap), "--parquet", str(ours)])
    assert rows_of(ours) == n
    out.append(("rawlab read --parquet", t, n, os.path.getsize(ours)))
    if not peers:
        return out
    if p2p:
        theirs = d / "p2p.parquet"
        t2 = timed([p2p, "-i", str(pcap), "-o", str(theirs), "-f", "parquet"])
        out.append(("pcaptoparquet", t2, rows_of(theirs), os.path.getsize(theirs)))
    else:
        print("pcaptoparquet: not found (see this file's docstring to install it)")
    if shutil.which("tshark"):
        ek = d / "ek.parquet"
        step = d / "ek_to_parquet.py"
        step.write_text("import sys, duckdb\nduckdb.sql(\"COPY (SELECT * FROM read_ndjson("
                        "'/dev/stdin', columns={'timestamp': 'VARCHAR', 'layers': 'JSON'})) "
                        "TO '\" + sys.argv[1] + \"' (FORMAT parquet)\")\n")
        t3 = timed(f"tshark -T ek -r {pcap} | grep -v '^{{\"index\"' | "
                   f"{sys.executable} {step} {ek}", shell=True)
        out.append(("tshark -T ek | duckdb read_ndjson", t3, rows_of(ek),
                    os.path.getsize(ek)))
    else:
        print("tshark: not found (./setup.sh --test installs it)")
    return out


def make_lake(pcap: Path, ours: Path, d: Path, copies: int) -> Path:
    lake = d / "lake"
    tcp = d / "tcp"
    subprocess.run([RAWLAB, "tcp", str(pcap), "--parquet", str(tcp)], check=True,
                   stderr=subprocess.DEVNULL)
    for k in range(copies):  # one hourly partition per copy, as a long capture makes
        for table, src in (("packets", [ours]),
                           ("segments", list(tcp.glob("segments/**/*.parquet"))),
                           ("connections", list(tcp.glob("connections/**/*.parquet")))):
            part = lake / table / "date=2023-11-14" / f"hour={k:02d}"
            part.mkdir(parents=True, exist_ok=True)
            for j, f in enumerate(src):
                if table == "packets":  # the single file holds date and hour: drop them
                    import pyarrow.parquet as pq

                    if k == 0:
                        t = pq.read_table(f)
                        pq.write_table(t.drop_columns(["date", "hour"]), part / "cap.parquet")
                    else:
                        shutil.copy(lake / table / "date=2023-11-14/hour=00/cap.parquet",
                                    part / "cap.parquet")
                else:
                    shutil.copy(f, part / f"cap{j}.parquet")
    return lake


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=500_000)
    ap.add_argument("--copies", type=int, default=20)
    ap.add_argument("--pcaptoparquet")
    ap.add_argument("--no-peers", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rawlab-bench-sql-") as tmp:
        d = Path(tmp)
        pcap = d / "bench.pcap"
        _build(pcap, a.packets)
        print(f"file: {a.packets:,} packets, {os.path.getsize(pcap) / 1e6:.0f} MB")
        res = write_rows(pcap, d, a.packets, find_pcaptoparquet(a.pcaptoparquet),
                         not a.no_peers)
        base = res[0][1]
        print("\nwriting Parquet (whole process):")
        for name, t, n, size in res:
            print(f"  {name:36s} {t:8.2f} s  {n / t:>10,.0f} rows/s  {n:,} rows  "
                  f"{size / 1e6:6.1f} MB  rawlab {t / base:6.1f}x faster")
        lake = make_lake(pcap, d / "rawlab.parquet", d, a.copies)
        print(f"\nREADME queries over {a.copies * a.packets:,} packets ({a.copies} hourly "
              "partitions), `rawlab sql QUERY DATASET` (whole process):")
        for title, sql in queries().items():
            t = timed([RAWLAB, "sql", sql, str(lake)])
            print(f"  {title:32s} {t:6.2f} s")
        q = queries()["Top talkers"]
        t = timed([RAWLAB, "sql", q, str(pcap)])
        print(f"\ntop talkers straight from the pcap ({a.packets:,} packets, Arrow "
              f"streams): {t:.2f} s")


if __name__ == "__main__":
    main()
