"""`rawlab sql` and the README's queries: their answers on captures/ and on captures made
here, read straight from pcap (Arrow streams) and from the Parquet dataset that
`read --parquet` and `tcp --parquet` write; bad input and bad queries."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tcp_synth import SYN_OPTS, T0, Conv

ROOT = Path(__file__).resolve().parents[2]
RAWLAB = [sys.executable, "-m", "rawlab"]
MINUTE = 60_000.0  # ms


def readme_queries() -> dict[str, str]:
    """The README's example queries, by the words before each."""
    text = (ROOT / "README.md").read_text()
    found = re.findall(r"\n([^\n]+):\n\n```sql\n(.*?)```", text, re.S)
    return dict(found)


QUERIES = readme_queries()
TOP, SYNS, RTX, IRTT = (QUERIES[k] for k in (
    "Top talkers", "SYNs that never got a SYN-ACK", "Retransmissions by minute",
    "Slowest handshakes"))


def sql(query: str, *inputs: str | Path, form: str = "--json", ok: bool = True
        ) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([*RAWLAB, "sql", query, *map(str, inputs), form], check=False,
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def rows(query: str, *inputs: str | Path) -> list[dict]:
    return [json.loads(line) for line in sql(query, *inputs).stdout.splitlines()]


def make_day(d: Path) -> Path:
    """Three captures of one night (2023-11-14 22:13 UTC on), with known answers:

    web.pcap   10.0.0.1:40000 -> 10.0.0.2:80: handshake (iRTT 1 ms), 300 bytes, one
               segment retransmitted twice at minute 22:14 and once at 22:15, FIN both ways
    scan.pcap  an hour later: 10.0.0.3 sends SYNs to 10.0.0.2:443 from 50001 (twice:
               no answer), 50002 (no answer) and 50003 (answered by RST), and 10.0.0.3:50004
               gets its SYN-ACK
    cut.pcap   web.pcap with its last record cut short (a copy under another name)
    """
    d.mkdir()
    web = Conv(c_addr=bytes((10, 0, 0, 1)), s_addr=bytes((10, 0, 0, 2))).handshake(SYN_OPTS)
    web.c(3, "PA", seq=1, ack=1, n=100)
    web.s(4, "A", seq=1, ack=101)
    web.c(MINUTE, "PA", seq=101, ack=1, n=100)
    web.c(MINUTE + 500, "PA", seq=101, ack=1, n=100)  # retransmission
    web.c(MINUTE + 1500, "PA", seq=101, ack=1, n=100)  # retransmission
    web.s(MINUTE + 1501, "A", seq=1, ack=201)
    web.c(2 * MINUTE, "PA", seq=201, ack=1, n=100)
    web.c(2 * MINUTE + 300, "PA", seq=201, ack=1, n=100)  # retransmission
    web.s(2 * MINUTE + 301, "A", seq=1, ack=301)
    web.c(2 * MINUTE + 400, "FA", seq=301, ack=1)
    web.s(2 * MINUTE + 401, "FA", seq=1, ack=302)
    web.c(2 * MINUTE + 402, "A", seq=302, ack=2)
    web.write(d / "web.pcap")
    scan = Conv()
    hour = 60 * MINUTE
    for port, answer in ((50001, None), (50002, None), (50003, "RA"), (50004, "SA")):
        c = Conv(c_addr=bytes((10, 0, 0, 3)), s_addr=bytes((10, 0, 0, 2)), c_port=port,
                 s_port=443, c_isn=port * 7)
        c.c(hour + port - 50000, "S")
        if port == 50001:
            c.c(hour + 1000, "S")
        if answer == "RA":
            c.s(hour + port - 49999, "RA", ack=1)
        elif answer:
            c.s(hour + port - 49999, "SA", ack=1)
        scan.packets += c.packets
    scan.packets.sort()
    scan.write(d / "scan.pcap")
    data = (d / "web.pcap").read_bytes()
    (d / "cut.pcap").write_bytes(data[:-10])
    return d


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_day(tmp_path_factory.mktemp("sql") / "day")


@pytest.fixture(scope="module")
def lake(day: Path) -> Path:
    out = day.parent / "lake"
    for cmd in ("read", "tcp"):
        r = subprocess.run([*RAWLAB, cmd, str(day), "--parquet", str(out)],
                           check=False, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "cut.pcap" in r.stderr and "warning" in r.stderr
    return out


def test_readme_has_the_queries() -> None:
    assert len(QUERIES) == 4


def test_readme_queries_on_captures() -> None:
    assert rows(TOP, "captures/") == [
        {"src": "10.77.0.1", "dst": "10.77.0.2", "packets": 491, "bytes": 583245},
        {"src": "fd00:77::1", "dst": "fd00:77::2", "packets": 222, "bytes": 326248},
        {"src": "10.77.0.2", "dst": "10.77.0.1", "packets": 279, "bytes": 20276},
        {"src": "fd00:77::2", "dst": "fd00:77::1", "packets": 43, "bytes": 3990}]
    # tcp-refused.pcap: a SYN answered by RST
    assert rows(SYNS, "captures/") == [
        {"src": "10.77.0.1", "sport": 35440, "dst": "10.77.0.2", "dport": 5002, "syns": 1}]
    # 5 (tcp-loss) + 3 (tcp-ipv6-loss), all in one minute
    assert rows(RTX, "captures/") == [
        {"minute": "2026-11-23T22:29:00+00:00", "retransmissions": 8}]
    got = rows(IRTT, "captures/")
    assert len(got) == 7 and got[0] == {"client": "fd00:77::1", "server": "fd00:77::2",
                                        "server_port": 5001, "irtt_ms": 0.073}


def day_answers(*inputs: str | Path) -> None:
    assert rows(TOP, *inputs) == [
        # web.pcap: 10 frames to the server (one SYN with 20 bytes of options, 6 x 100
        # bytes of data), 5 back (a SYN-ACK with options); cut.pcap: all but its last ACK
        {"src": "10.0.0.1", "dst": "10.0.0.2", "packets": 19, "bytes": 19 * 40 + 2 * 620},
        {"src": "10.0.0.2", "dst": "10.0.0.1", "packets": 10, "bytes": 10 * 40 + 2 * 20},
        {"src": "10.0.0.3", "dst": "10.0.0.2", "packets": 5, "bytes": 5 * 40},
        {"src": "10.0.0.2", "dst": "10.0.0.3", "packets": 2, "bytes": 2 * 40}]
    assert rows(SYNS, *inputs) == [
        {"src": "10.0.0.3", "sport": 50001, "dst": "10.0.0.2", "dport": 443, "syns": 2},
        {"src": "10.0.0.3", "sport": 50002, "dst": "10.0.0.2", "dport": 443, "syns": 1},
        {"src": "10.0.0.3", "sport": 50003, "dst": "10.0.0.2", "dport": 443, "syns": 1}]
    assert rows(RTX, *inputs) == [  # twice each: web.pcap and cut.pcap
        {"minute": "2023-11-14T22:14:00+00:00", "retransmissions": 4},
        {"minute": "2023-11-14T22:15:00+00:00", "retransmissions": 2},
        {"minute": "2023-11-14T23:13:00+00:00", "retransmissions": 1}]  # 50001's second SYN
    assert rows(IRTT, *inputs)[:2] == [
        {"client": "10.0.0.1", "server": "10.0.0.2", "server_port": 80, "irtt_ms": 2.0}] * 2


def test_readme_queries_on_made_captures(day: Path) -> None:
    day_answers(day)


def test_readme_queries_on_the_dataset_are_the_same(lake: Path) -> None:
    day_answers(lake)
    parts = sorted(str(p.relative_to(lake)) for p in lake.rglob("*.parquet"))
    assert "packets/date=2023-11-14/hour=22/web.parquet" in parts
    assert "packets/date=2023-11-14/hour=23/scan.parquet" in parts
    assert "segments/date=2023-11-14/hour=23/scan.parquet" in parts
    assert "connections/date=2023-11-14/hour=22/cut.parquet" in parts


def test_partitions_prune_by_time(lake: Path) -> None:
    q = "SELECT count(*) AS n, min(hour) AS h FROM packets WHERE date = DATE '2023-11-14' " \
        "AND hour = 23"
    assert rows(q, lake) == [{"n": 7, "h": 23}]  # scan.pcap only
    plan = sql("EXPLAIN ANALYZE " + q.replace("count(*) AS n, min(hour) AS h", "count(*)"),
               lake, form="--csv").stdout
    assert "Scanning Files: 1/3" in plan and "Total Files Read: 1" in plan  # web, cut: pruned


def test_a_truncated_capture_keeps_its_complete_records(day: Path) -> None:
    r = sql("SELECT file, count(*) AS n FROM packets GROUP BY file ORDER BY file", day)
    assert [json.loads(x) for x in r.stdout.splitlines()] == [
        {"file": str(day / "cut.pcap"), "n": 14}, {"file": str(day / "scan.pcap"), "n": 7},
        {"file": str(day / "web.pcap"), "n": 15}]
    warning = r.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith(f"rawlab: warning: {day}/cut.pcap")
    assert "truncated record" in warning[0]


def test_a_query_error_is_one_line_exit_5(day: Path) -> None:
    r = sql("SELECT nothing FROM packets", day, ok=False)
    assert r.returncode == 5 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith("rawlab: error: query failed: Binder Error: Referenced column "
                               '"nothing" not found')
    r = sql("SELEKT 1", day, ok=False)
    assert r.returncode == 5 and "Parser Error" in r.stderr and len(r.stderr.splitlines()) == 1


def test_output_forms(day: Path) -> None:
    q = "SELECT dport, count(*) AS n FROM packets WHERE dport = 443 GROUP BY dport"
    assert sql(q, day / "scan.pcap", form="--csv").stdout == "dport,n\n443,5\n"
    assert sql(q, day / "scan.pcap", form="--json").stdout == '{"dport":443,"n":5}\n'
    r = subprocess.run([*RAWLAB, "sql", q, str(day / "scan.pcap")], check=False,
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.stdout == "dport  n\n  443  5\n"


def test_a_view_named_twice_is_read_once_into_memory(day: Path) -> None:
    q = "SELECT (SELECT count(*) FROM packets) AS a, (SELECT count(*) FROM packets) AS b"
    assert rows(q, day / "web.pcap") == [{"a": 15, "b": 15}]


def test_parquet_file_and_dataset_and_pcap_together(day: Path, tmp_path: Path) -> None:
    one = tmp_path / "web.parquet"
    r = subprocess.run([*RAWLAB, "read", str(day / "web.pcap"), "--parquet", str(one),
                        "tcp", "and", "dst", "port", "80"], check=False, capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stderr == f"wrote 10 rows of 1 capture(s) to {one}\n"
    assert rows("SELECT count(*) AS n, count(DISTINCT file) AS f, min(hour) AS h FROM packets",
                one, day / "scan.pcap") == [{"n": 17, "f": 2, "h": 22}]


def test_tcp_parquet_tables(day: Path, tmp_path: Path) -> None:
    out = tmp_path / "t"
    r = subprocess.run([*RAWLAB, "tcp", str(day / "web.pcap"), str(day / "scan.pcap"),
                        "--parquet", str(out)], check=False, capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stderr == f"wrote 5 connections and 22 segments to {out}\n"
    assert rows("SELECT state, history, c2s_bytes, s2c_bytes, c2s_retransmissions AS r, "
                "retransmission, client_mss FROM connections WHERE server_port = 80", out) == [
        {"state": "SF", "history": "ShADaTFf", "c2s_bytes": 600, "s2c_bytes": 0, "r": 3,
         "retransmission": 3, "client_mss": 1460}]
    got = rows("SELECT frame, dir, seq_rel, ack_rel, len, flags_text, retransmission, "
               "ack_rtt_ns FROM segments WHERE file LIKE '%web.pcap' ORDER BY frame", out)
    assert [g["frame"] for g in got] == list(range(1, 16))
    assert got[1] == {"frame": 2, "dir": 1, "seq_rel": 0, "ack_rel": 1, "len": 0,
                      "flags_text": "SA", "retransmission": False, "ack_rtt_ns": 1_000_000}
    assert [g["frame"] for g in got if g["retransmission"]] == [7, 8, 11]


def test_rows_are_never_dropped_across_link_types(tmp_path: Path) -> None:
    """Netlink, vsock and odd frames of tcpdump's corpus are rows too (per packet)."""
    corpus = Path("/work/shared/corpus/tcpdump-tests")
    assert corpus.is_dir()
    names = ["802.1ad_QinQ.pcap", "dhcp-rfc3004.pcap", "icmp-cksum-oobr-1.pcapng"]
    d = tmp_path / "mix"
    d.mkdir()
    want = 0
    from rawlab.pcap.reader import open_file

    for n in names:
        if (corpus / n).exists():
            shutil.copy(corpus / n, d / n)
            with open_file(d / n) as cap:
                want += sum(1 for _ in cap)
    assert want > 0
    got = rows("SELECT count(*) AS n, count(layers) AS l FROM packets", d)
    assert got == [{"n": want, "l": want}]


def test_time_is_utc_microseconds() -> None:
    assert T0 // 10**9 == 1_700_000_000
