"""The packets table (present/tables.py) and its Parquet files (present/parquet.py).

Both paths give one table: every row the fast path holds, built again from the per-packet
views (decode/rows.py), equals the fast path's row, column for column, on captures/ and
tcpdump's corpus; records one by one (a live capture, a filter) give the same rows as the
file's batches; files appear only whole; datasets are partitioned by UTC date and hour.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from tcp_synth import T0, Conv

from rawlab.decode import columns as C
from rawlab.pcap.reader import open_file
from rawlab.pcap.writer import PcapngWriter
from rawlab.present import parquet as P
from rawlab.present.tables import PacketTables, packets_reader, packets_schema
from rawlab.records import PROCESS, Record, SocketOwner

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted(str(p) for p in (ROOT / "captures").glob("*.pcap"))
CORPUS = Path("/work/shared/corpus/tcpdump-tests")


def both_paths_equal(path: str) -> tuple[int, int]:
    """Each batch's table, and the same batch with every fast row sent per packet: equal.
    Returns (rows, fast rows)."""
    rows = fast_rows = 0
    with C.open_batches(path, rows=512) as src:
        try:
            for b in src:
                fast = b.cols["status"] == C.FAST
                t1 = PacketTables(path).table(b)
                saved = b.cols["status"].copy()
                b.cols["status"][fast] = C.RECORD  # any reason: the row goes per packet
                t2 = PacketTables(path).table(b)
                b.cols["status"][:] = saved
                for name in t1.schema.names:
                    if name != "status":
                        assert t1.column(name).to_pylist() == t2.column(name).to_pylist(), (
                            path, name)
                rows += len(b)
                fast_rows += int(fast.sum())
        except Exception as exc:  # a damaged corpus file: the batches before it count
            if "offset" not in str(exc):
                raise
    return rows, fast_rows


def test_fast_rows_equal_per_packet_rows_on_captures() -> None:
    total = sum(both_paths_equal(p)[1] for p in CAPTURES)
    assert total == 1035  # every frame of captures/ is a fast row


def test_fast_rows_equal_per_packet_rows_on_tcpdump_corpus() -> None:
    assert CORPUS.is_dir(), f"tcpdump's test corpus not found at {CORPUS}"
    names = [p for p in sorted(CORPUS.iterdir()) if p.suffix in (".pcap", ".pcapng")
             and p.stat().st_size < 300_000]
    fast = rows = 0
    for p in names:
        try:
            r, f = both_paths_equal(str(p))
        except Exception as exc:
            if "pcap" in str(exc) or "offset" in str(exc):
                continue
            raise
        rows, fast = rows + r, fast + f
    assert fast > 1000 and rows > fast  # both kinds of rows were compared


def test_a_row_the_fast_path_left_is_filled_per_packet(tmp_path: Path) -> None:
    """An ICMP error (not an echo: per packet) and a bad TCP checksum keep their values."""
    from tcp_synth import tcp_ipv4

    # (port 5001: no application decoder claims it, so the good row stays on the fast path)
    syn = tcp_ipv4(bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2)), 1234, 5001, 7, 0, 2, 512)
    bad = syn[:36] + bytes([syn[36] ^ 0xFF]) + syn[37:]  # the TCP checksum's first byte
    path = tmp_path / "odd.pcap"
    from rawlab.pcap.writer import PcapWriter

    with PcapWriter(path, 101) as w:
        w.write(T0, syn, len(syn))
        w.write(T0 + 1000, bad, len(bad))
    t = packets_reader([str(path)], pytest.fail).read_all().to_pylist()
    assert [r["status"] for r in t] == [C.FAST, C.CHECKSUM]
    for r in t:
        assert (r["src"], r["dst"], r["sport"], r["dport"], r["tcp_seq"], r["tcp_flags"],
                r["tcp_window"], r["layers"], r["linktype_name"]) == (
            "10.0.0.1", "10.0.0.2", 1234, 5001, 7, 2, 512, "ipv4:tcp", "RAW")
        assert r["udp_length"] is None and r["eth_src"] is None and r["ip6_hop_limit"] is None
    assert (t[0]["l4_csum"], t[1]["l4_csum"]) == (1, 3)  # good; bad (only per packet)


def test_records_give_the_rows_of_the_file() -> None:
    """capture and read -f build batches from Records: the same table as the file's."""
    path = CAPTURES[0]
    want = packets_reader([path], pytest.fail).read_all()
    with open_file(path) as cap:
        recs = list(cap)
    batch = C.RecordBatcher().batch(recs, list(range(1, len(recs) + 1)))
    got = PacketTables(path).table(batch, records=recs)
    for name in want.schema.names:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name


def test_process_columns_from_a_pcapng_written_by_capture_processes(tmp_path: Path) -> None:
    conv = Conv().handshake()
    path = tmp_path / "owned.pcapng"
    curl = SocketOwner(PROCESS, pid=4242, comm="curl", cmdline=("curl", "x"), uid=0)
    with PcapngWriter(path) as w:
        w.add_interface(101, "veth0")
        for k, (ts, data) in enumerate(conv.packets):
            rec = Record(ts, len(data), 101, data)
            rec.owners = (curl, None) if k != 1 else (None, curl)
            w.write_record(rec, 0)
    t = packets_reader([str(path)], pytest.fail).read_all().to_pylist()
    assert [(r["src_comm"], r["src_pid"], r["dst_comm"]) for r in t] == [
        ("curl", 4242, None), (None, None, "curl"), ("curl", 4242, None)]
    assert t[0]["src_cmdline"] == "curl x" and t[0]["src_process_state"] == "process"
    assert {r["interface_name"] for r in t} == {"veth0"}


def test_parquet_file_appears_only_whole(tmp_path: Path) -> None:
    rb = packets_reader([CAPTURES[0]], pytest.fail).read_next_batch()
    out = tmp_path / "x.parquet"
    f = P.ParquetFile(str(out), packets_schema())
    f.write(rb)
    assert not out.exists() and (tmp_path / ".x.parquet.partial").exists()
    f.close()
    assert out.exists() and os.listdir(tmp_path) == ["x.parquet"]
    assert pq.read_table(out).num_rows == len(rb)
    g = P.ParquetFile(str(tmp_path / "y.parquet"), packets_schema())
    g.write(rb)
    g.discard()  # a failed writer leaves nothing under the name, nor its hidden file
    assert os.listdir(tmp_path) == ["x.parquet"]


def test_dataset_is_partitioned_by_utc_date_and_hour(tmp_path: Path) -> None:
    conv = Conv()
    for hour in range(3):  # 23:00, 00:00 (next day), 01:00 UTC: three partitions
        conv.c(hour * 3_600_000.0 + 2_700_000, "S")
    path = conv.write(tmp_path / "night.pcap")
    assert T0 % 86_400_000_000_000 // 3_600_000_000_000 == 22  # 2023-11-14 22:13:20
    rows, files = P.write_packets([str(path)], str(tmp_path / "lake"), pytest.fail)
    assert (rows, files) == (3, 1)
    got = sorted(str(p.relative_to(tmp_path / "lake")) for p in
                 (tmp_path / "lake").rglob("*.parquet"))
    assert got == ["packets/date=2023-11-14/hour=22/night.parquet",
                   "packets/date=2023-11-14/hour=23/night.parquet",
                   "packets/date=2023-11-15/hour=00/night.parquet"]
    one = pq.read_table(tmp_path / "lake" / got[1])
    assert "date" not in one.schema.names and one.num_rows == 1  # the path holds them


def test_rotation_names_as_capture_w_does(tmp_path: Path) -> None:
    """-G with --parquet: RotatingWriter's slots and names, one whole file per slot."""
    conv = Conv()
    for k in range(5):
        conv.c(k * 1000.0, "S")  # one SYN a second, from now on (rotation is live-only)
    sink = P.RotatingParquet(str(tmp_path / "cap.parquet"), 2)
    now = time.time_ns()
    for frame, (ts, data) in enumerate(conv.packets, 1):
        sink.packet(frame, Record(ts - T0 + now, len(data), 101, data), None, None)
    sink.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 3 and not [n for n in names if n.startswith(".")]
    assert names == sorted(sink.files and [os.path.basename(f) for f in sink.files])
    assert all(n.startswith("cap-") and n.endswith(".parquet") for n in names)
    tables = [pq.read_table(tmp_path / n) for n in names]
    assert [t.num_rows for t in tables] == [2, 2, 1]
    assert [f for t in tables for f in t.column("frame").to_pylist()] == [1, 2, 3, 4, 5]


def test_text_columns_are_dictionaries_and_null_where_they_do_not_apply() -> None:
    t = packets_reader([c for c in CAPTURES if "ipv6" in c], pytest.fail).read_all()
    assert str(t.schema.field("src").type) == "dictionary<values=string, indices=int32, " \
        "ordered=0>"
    assert t.column("ip4_ttl").null_count == t.num_rows
    assert t.column("ip6_hop_limit").null_count == 0
    assert set(t.column("src").to_pylist()) == {"fd00:77::1", "fd00:77::2"}
    assert np.all(t.column("time").cast("int64").to_numpy() * 1000
                  == t.column("ts_ns").to_numpy() // 1000 * 1000)


def test_docs_tables_names_every_column_with_its_type() -> None:
    """docs/tables.md: a row for every column of the three tables, with the Arrow type."""
    from rawlab.present.tcp_tables import connections_schema, segments_schema

    doc = (ROOT / "docs" / "tables.md").read_text()
    sections = doc.split("\n## ")
    for title, schema in (("`packets`", packets_schema()), ("`segments`", segments_schema()),
                          ("`connections`", connections_schema())):
        text = next(s for s in sections if s.startswith(title))
        rows = {}
        for line in text.splitlines():
            cells = [c.strip() for c in line.split("|")]
            if len(cells) > 3 and cells[1].startswith("`"):
                for name in cells[1].split(","):
                    rows[name.strip(" `")] = cells[2]
        for f in schema:
            kind = "string" if str(f.type).startswith("dictionary") else str(f.type)
            assert f.name in rows, (title, f.name)
            assert rows[f.name] == kind.replace("[day]", ""), (title, f.name, rows[f.name])
        assert len(rows) == len(schema), (title, sorted(set(rows) - set(schema.names)))
