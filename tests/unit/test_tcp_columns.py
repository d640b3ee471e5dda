"""The columnar TCP summary (``analysis.tcp.columns``) against its two references.

* tcptrace 6.6.7 (``tcptrace -l -r``, Debian): packets, data packets and bytes, unique
  bytes, retransmitted packets and bytes, out-of-order packets, zero-window probes, ACK
  and pure-ACK packets, SACK and D-SACK packets, most SACK blocks, zero-window and
  largest window advertisements, RTT samples — each direction of every connection of
  every capture in ``captures/``, whole and in tiny batches (the state carried between
  batches), and of a lossy transfer replicated into several connections.
* The exact analyser (``analysis.tcp``, Wireshark's rules) on everything both give:
  endpoints, state, history, iRTT, segments and payload bytes each way, TCP flags seen,
  first and last frame and time; RTT samples and retransmissions only where both
  definitions meet (module docstring of ``analysis.tcp.columns``).
"""

from __future__ import annotations

import io
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from tcp_synth import T0, tcp_ipv4

from rawlab.analysis.tcp import analyse
from rawlab.analysis.tcp import columns as TC
from rawlab.analysis.tcp.columns import ConnSummary, summarise, to_arrow
from rawlab.decode import columns as C
from rawlab.pcap.reader import open_file
from rawlab.pcap.writer import PcapWriter

pytestmark = pytest.mark.unit

CAP = Path(__file__).resolve().parents[2] / "captures"
FILES = sorted(p.name for p in CAP.glob("*.pcap"))
# tcptrace's label -> the summary's column
TCPTRACE = {"total packets": "packets", "actual data pkts": "data_pkts",
            "actual data bytes": "data_bytes", "unique bytes sent": "unique_bytes",
            "rexmt data pkts": "rexmit_pkts", "rexmt data bytes": "rexmit_bytes",
            "outoforder pkts": "ooo_pkts", "zwnd probe pkts": "zwnd_probes",
            "ack pkts sent": "ack_pkts", "pure acks sent": "pure_acks",
            "sack pkts sent": "sack_pkts", "dsack pkts sent": "dsack_pkts",
            "max sack blks/ack": "max_sack_blocks", "zero win adv": "win_zero",
            "max win adv": "win_max", "RTT samples": "rtt_samples"}
_LINE = re.compile(r"\s+([a-zA-Z0-9 /#_-]+?):\s+(\S+)(?:\s+(?:bytes|pkts|ms|times|secs|Bps))?"
                   r"\s+([a-zA-Z0-9 /#_-]+?):\s+(\S+)")


def tcptrace(path: Path) -> list[dict[str, tuple[str, str]]]:
    """Each connection of ``tcptrace -l -r -n``: label -> (a->b, b->a)."""
    out = subprocess.run(["tcptrace", "-l", "-r", "-n", str(path)], capture_output=True,
                         text=True, check=True).stdout
    conns = []
    for block in re.split(r"TCP connection \d+:", out)[1:]:
        d = {}
        for line in block.splitlines():
            m = _LINE.match(line)
            if m and m.group(1) == m.group(3):
                d[m.group(1)] = (m.group(2), m.group(4))
        conns.append(d)
    return conns


def summary(path: Path | bytes, **kw: int) -> dict:
    src = io.BytesIO(path) if isinstance(path, bytes) else path
    with C.open_batches(src, **kw) as batches:
        return summarise(batches)


def differences(path: Path, cols: dict) -> list[str]:
    out = []
    conns = tcptrace(path)
    assert len(conns) == len(cols["stream"])
    for k, conn in enumerate(conns):
        # tcptrace's a is the first packet's sender: the server when that was a SYN-ACK
        sides = ("s2c", "c2s") if cols["history"][k].startswith("^") else ("c2s", "s2c")
        assert len([x for x in TCPTRACE if x in conn]) == len(TCPTRACE), conn.keys()
        for label, col in TCPTRACE.items():
            for i in (0, 1):
                want, got = int(conn[label][i]), int(cols[f"{sides[i]}_{col}"][k])
                if want != got:
                    out.append(f"connection {k + 1} {label} {'ab'[i]}: tcptrace {want}, "
                               f"rawlab {got}")
    return out


needs_tcptrace = pytest.mark.skipif(shutil.which("tcptrace") is None,
                                    reason="tcptrace not installed (./setup.sh --test)")


@needs_tcptrace
@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("batches", [{}, {"rows": 7, "chunk": 3000}])
def test_tcptrace_figures(name: str, batches: dict) -> None:
    path = CAP / name
    assert differences(path, summary(path, **batches)) == []


def replicated(tmp_path: Path, copies: int = 4) -> Path:
    """tcp-loss.pcap's connection and tcp-zerowindow.pcap's, interleaved, each repeated
    with new client ports (several connections per batch, states carried)."""
    recs = []
    for name, shift in (("tcp-loss.pcap", 0), ("tcp-zerowindow.pcap", 7)):
        with open_file(CAP / name) as cap:
            for r in cap:
                for c in range(copies):
                    b = bytearray(r.data)
                    t = 14 + (b[14] & 15) * 4
                    sport, dport = struct.unpack_from("!HH", b, t)
                    at, port = (t, sport) if dport == 5001 else (t + 2, dport)
                    struct.pack_into("!H", b, at, port + 100 * c + shift)
                    recs.append((r.ts_ns + c * 1000, bytes(b), r.wirelen))
    recs.sort(key=lambda x: x[0])
    out = tmp_path / "many.pcap"
    with PcapWriter(out, 1, snaplen=262144) as w:
        for ts, data, wl in recs:
            w.write(ts, data, wl)
    return out


@needs_tcptrace
def test_tcptrace_figures_many_connections(tmp_path: Path) -> None:
    path = replicated(tmp_path)
    for batches in ({}, {"rows": 50, "chunk": 4000}):
        cols = summary(path, **batches)
        assert len(cols["stream"]) == 8
        assert differences(path, cols) == []


@pytest.mark.parametrize("name", FILES)
def test_same_facts_as_the_exact_analyser(name: str) -> None:
    path = CAP / name
    cols = summary(path, rows=64, chunk=6000)
    with open_file(path) as cap:
        conns = [e.connection for e in analyse(cap) if type(e).__name__ == "ConnectionClosed"]
    assert len(conns) == len(cols["stream"])
    for k, c in enumerate(conns):
        assert (bytes(cols["client"][k]), int(cols["client_port"][k])) == c.client
        assert (bytes(cols["server"][k]), int(cols["server_port"][k])) == c.server
        assert cols["state"][k] == c.state and cols["history"][k] == c.history
        assert int(cols["irtt_ns"][k]) == (c.irtt_ns or 0)
        assert int(cols["first_frame"][k]) == c.first_frame
        assert int(cols["last_frame"][k]) == c.last_frame
        assert int(cols["first_ts_ns"][k]) == c.first_ts_ns
        assert int(cols["last_ts_ns"][k]) == c.last_ts_ns
        for side, st in (("c2s", c.stats[0]), ("s2c", c.stats[1])):
            assert int(cols[f"{side}_packets"][k]) == st.segments
            assert int(cols[f"{side}_data_bytes"][k]) == st.bytes
            assert int(cols[f"{side}_flags_seen"][k]) == st.flags_seen
            # Wireshark's retransmissions plus its out-of-order segments are tcptrace's
            # when every segment was captured before it was lost (these captures)
            wire = st.retransmissions + (c.analysis_counts.get("out_of_order", 0)
                                         if side == "c2s" else 0)
            assert int(cols[f"{side}_rexmit_pkts"][k]) == wire
        assert int(cols["c2s_win_zero"][k] + cols["s2c_win_zero"][k]) <= \
            c.analysis_counts.get("zero_window", 0)


def test_batches_do_not_change_the_answer() -> None:
    path = CAP / "tcp-ipv6-loss.pcap"
    whole = summary(path)
    for kw in ({"rows": 1, "chunk": 200}, {"rows": 13, "chunk": 2048}):
        got = summary(path, **kw)
        for k, v in whole.items():
            assert list(got[k]) == list(v), k


def test_odd_rows_take_the_exact_front_end() -> None:
    """Rows the columns do not hold (TCP options they do not know) are read per packet,
    rows with a bad IPv4 header or TCP checksum from the columns, and all are counted
    the same; a bad TCP checksum is counted as one."""
    path = CAP / "tcp-clean.pcap"
    with open_file(path) as cap:
        recs = list(cap)
    f = io.BytesIO()
    w = PcapWriter(f, 1, snaplen=262144)
    for i, r in enumerate(recs):
        data = bytearray(r.data)
        if i == 5:
            data[24] ^= 0xFF  # the IPv4 TTL: its header checksum is now wrong
        if i == 6:
            data[48] ^= 0x01  # the TCP window: its checksum is now wrong
        w.write(r.ts_ns, bytes(data), r.wirelen)
    w.close()
    odd = summary(f.getvalue())
    base = summary(path)
    for k in ("c2s_packets", "s2c_packets", "c2s_data_bytes", "c2s_unique_bytes", "state"):
        assert list(odd[k]) == list(base[k]), k
    bad = [sum(d["c2s_bad_checksums"]) + sum(d["s2c_bad_checksums"]) for d in (base, odd)]
    assert bad == [0, 1]
    # Zeek's history letter for a bad checksum (c: from the responder), nothing else new
    assert list(base["history"]) == ["ShADaFf"] and list(odd["history"]) == ["ShADacFf"]


def test_arrow_and_connections() -> None:
    with C.open_batches(CAP / "tcp-refused.pcap") as src:
        s = ConnSummary()
        for b in src:
            s.add(b)
    t = to_arrow(s.columns())
    assert t.num_rows == 1 and t.column("state").to_pylist() == ["REJ"]
    assert t.column("history").to_pylist() == ["Sr"]
    (conn,) = s.connections()
    assert conn.state == "REJ" and conn.stats[0].segments == 1 and conn.stats[1].segments == 1



CORPUS = Path("/work/shared/corpus/tcpdump-tests")
# IPv6 jumbograms (payload length 0, RFC 2675): rawlab takes the captured length, as
# for TSO; tcptrace takes the 0 and counts no data
JUMBO = {"bigtcp-ipv6.pcap", "bigtcp-ipv6-hbh.pcap"}


@needs_tcptrace
def test_tcptrace_figures_on_tcpdumps_corpus() -> None:
    """tcpdump's corpus files with TCP connections: where tcptrace splits the capture into
    the same connections (its own new-connection heuristics differ, and it reads link
    types rawlab leaves undecoded), every figure agrees."""
    if not CORPUS.is_dir():
        pytest.skip(f"tcpdump's corpus not found at {CORPUS}")
    same = 0
    for p in sorted(CORPUS.iterdir()):
        if p.suffix != ".pcap" or p.name in JUMBO or p.stat().st_size > 3_000_000:
            continue
        try:
            cols = summary(p)
        except Exception:
            continue  # a damaged file: the per-packet tests hold the error's place
        try:
            theirs = tcptrace(p) if len(cols["stream"]) else []
        except subprocess.CalledProcessError:
            continue  # a file tcptrace refuses
        if len(theirs) != len(cols["stream"]) or not theirs:
            continue
        assert differences(p, cols) == [], p.name
        same += 1
    assert same >= 60  # 67 files


def test_unacknowledged_segments_are_bounded(tmp_path: Path) -> None:
    """The segments kept for RTT matching are bounded a direction (the newest
    MAX_PENDING, trimmed at a quarter over) and in all (MAX_PENDING_ALL): an ACK of a
    segment no longer kept gives no sample, one of the newest still does."""
    a, b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
    frames: list[bytes] = []

    def seg(c: int, to_server: bool, seq: int, ack: int, flags: int, data: bytes = b"") -> None:
        src, dst, sp, dp = (a, b, 40000 + c, 80) if to_server else (b, a, 80, 40000 + c)
        frames.append(eth + tcp_ipv4(src, dst, sp, dp, seq, ack, flags, 65535, data))

    lots = {0: TC.MAX_PENDING * 3 // 2, **dict.fromkeys(range(1, 7), 9000)}
    for c in lots:  # handshakes: client ISN 0, server ISN 0
        seg(c, True, 0, 0, 0x02), seg(c, False, 0, 1, 0x12), seg(c, True, 1, 1, 0x10)
    for i in range(max(lots.values())):
        for c, k in lots.items():
            if i < k:
                seg(c, True, 1 + 10 * i, 1, 0x18, b"0123456789")
    half = len(frames)
    seg(0, False, 1, 11, 0x10)                    # the oldest: no longer kept
    seg(0, False, 1, 1 + 10 * lots[0], 0x10)      # the newest: one sample
    for name, upto in (("unacked.pcap", half), ("acked.pcap", len(frames))):
        with PcapWriter(tmp_path / name, 1, snaplen=262144) as w:
            for k, f in enumerate(frames[:upto]):
                w.write(T0 + k * 1000, f, len(f))
        s = ConnSummary()
        with C.open_batches(tmp_path / name) as batches:
            for batch in batches:
                s.add(batch)
        if upto == half:  # 12,500 + 54,000 kept at most before the cap in all
            assert TC.MAX_PENDING_ALL <= s.pending <= TC.MAX_PENDING_ALL * 5 // 4
    assert s.n == 7
    cols = s.columns()
    k = [int(p) for p in cols["client_port"]].index(40000)
    assert int(cols["c2s_packets"][k]) == 2 + lots[0]
    assert int(cols["c2s_rtt_samples"][k]) == 2  # the SYN and the newest
    assert int(cols["s2c_ack_pkts"][k]) == 3
    assert half == 3 * 7 + sum(lots.values())


def test_the_compiled_core_refuses_what_it_cannot_read() -> None:
    """rawlab._tcp_summary.Summary: made without __init__ it is empty, not a crash; a
    column or layouts that are not integers is a TypeError, not garbage; odd rows may
    be any sequence (kept as a tuple while the GIL is let go); a table taken while
    another thread feeds is refused (RuntimeError), never a read of freed memory."""
    import threading

    import numpy as np

    from rawlab import _tcp_summary as K

    with C.open_batches(CAP / "tcp-loss.pcap") as src:
        batch = next(iter(src))
    n = len(batch)
    easy = np.ones(n, np.bool_)
    lay = np.full((1, 3), -1, np.int64)

    bare = K.Summary.__new__(K.Summary)
    assert bare.table() == (b"", []) and bare.connections == 0
    syn = (0, 1, T0, 4, 0, 0x0A000001, 0, 0x0A000002, 40000, 80, 7, 0, 0x02, 65535, 0, 0,
           -1, 0, 0, 0, 0, 0)  # row 0, read per packet: a SYN
    assert bare.feed(batch.cols, batch.buf, lay, n, ~easy, [syn]) == [(0, 0)]
    assert bare.connections == 1 and len(bare.table()[1]) == 1

    s = K.Summary(C.CSUM_BAD, C.CSUM_NOTE_HINT, C.L4_TCP)
    with pytest.raises(TypeError, match="layouts: integers wanted"):
        s.feed(batch.cols, batch.buf, lay.astype(np.float64), n, easy, [])
    floats = {**batch.cols, "data_offset": batch.cols["data_offset"].astype(np.float64)}
    with pytest.raises(TypeError, match="data_offset: integers wanted"):
        s.feed(floats, batch.buf, lay, n, easy, [])
    assert s.connections == 0
    s.feed(batch.cols, batch.buf, lay, n, easy, [])
    assert s.connections == 1

    # many batches in one thread, tables in another: each table whole or refused
    many = np.tile(np.arange(n), 64)
    cols = {k: v[many] for k, v in batch.cols.items() if getattr(v, "ndim", 0) == 1}
    big = K.Summary(C.CSUM_BAD, C.CSUM_NOTE_HINT, C.L4_TCP)
    stop = threading.Event()
    refused = 0

    def feed() -> None:
        for _ in range(30):
            big.feed(cols, batch.buf, lay, len(many), np.ones(len(many), np.bool_), ())
        stop.set()

    t = threading.Thread(target=feed)
    t.start()
    while not stop.is_set():
        try:
            fig, conns = big.table()
            assert len(fig) == len(conns) * 8 * len(K.CONN_FIELDS + 2 * K.DIR_FIELDS)
        except RuntimeError as exc:
            assert "another thread feeds" in str(exc)
            refused += 1
    t.join()
    assert refused > 0
    assert len(big.table()[1]) == 1
