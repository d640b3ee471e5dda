"""`rawlab tcp` on the committed captures: table, NDJSON, follow, ladder, plot."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rawlab.cli import main
from rawlab.pcap.reader import open_file

CAP = Path(__file__).resolve().parents[2] / "captures"


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["tcp", *args], catch_exceptions=False)


def test_table() -> None:
    """The exact analyser's table (Wireshark's counts) is --exact since the columnar
    summary became the default table of a file."""
    r = run(str(CAP / "tcp-loss.pcap"), "--exact")
    assert r.exit_code == 0, r.output
    head, row = r.output.splitlines()[:2]
    assert "state" in head and "history" in head
    assert " SF " in row and "10.77.0.1:" in row and "fast_retransmission=3" in row


def test_table_from_columns() -> None:
    """The default table of a file: the columnar summary, tcptrace's retransmissions
    (7: Wireshark's 5 plus its 2 out-of-order) and counts; the same columns."""
    r = run(str(CAP / "tcp-loss.pcap"))
    assert r.exit_code == 0, r.output
    head, row = r.output.splitlines()[:2]
    assert head == run(str(CAP / "tcp-loss.pcap"), "--exact").output.splitlines()[0]
    assert row.split() == ["0", "10.77.0.1:51216", "10.77.0.2:5001", "SF", "ShADaTwFf",
                           "0.047", "400.5", "KiB", "0", "B", "7/0", "FSPA/FSA",
                           "sack=97,zero_window=1"]
    assert run(str(CAP / "tcp-loss.pcap"), "-c", "3").output.splitlines()[1].split()[3:5] == [
        "S1", "ShA"]


def test_json_records() -> None:
    r = run(str(CAP / "tcp-refused.pcap"), "--json")
    recs = [json.loads(line) for line in r.output.splitlines()]
    assert [x["type"] for x in recs] == ["segment", "segment", "connection"]
    syn, rst, conn = recs
    assert syn["flags"] == "S" and syn["seq_rel"] == 0 and syn["options"]["mss"] == 1460
    assert rst["flags"] == "RA" and rst["ack_rel"] == 1 and rst["dir"] == 1
    assert conn["state"] == "REJ" and conn["closed"] == "rst" and conn["history"] == "Sr"
    for key in ("frame", "stream", "dir", "seq", "ack", "seq_rel", "ack_rel", "flags", "len",
                "window", "checksum_status", "analysis"):
        assert key in syn


def test_json_stream_filter_and_analysis() -> None:
    r = run(str(CAP / "tcp-loss.pcap"), "--json", "--stream", "0")
    recs = [json.loads(line) for line in r.output.splitlines()]
    segs = [x for x in recs if x["type"] == "segment"]
    assert sum("fast_retransmission" in x["analysis"] for x in segs) == 3
    assert recs[-1]["analysis"]["fast_retransmission"] == 3
    none = CliRunner().invoke(main, ["tcp", str(CAP / "tcp-loss.pcap"), "--json", "--stream",
                                     "7"])  # a stream that does not exist is an error now
    assert none.exit_code == 1 and none.stdout == ""


def test_follow() -> None:
    r = run(str(CAP / "tcp-reset.pcap"), "--follow", "0")
    assert "hello from the server" in r.output and r.output.count("some request") == 50
    assert "650 bytes in order" in r.output


def test_ladder() -> None:
    r = run(str(CAP / "tcp-keepalive.pcap"), "--ladder")
    assert r.exit_code == 0 and "[keep_alive]" in r.output


def test_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "ts.png"
    r = run(str(CAP / "tcp-loss.pcap"), "--plot", str(png))
    assert r.exit_code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = builtins.__import__

    def no_mpl(name: str, *a: Any, **kw: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    r = CliRunner().invoke(main, ["tcp", str(CAP / "tcp-clean.pcap"), "--plot",
                                  str(tmp_path / "x.png")])
    assert r.exit_code == 4
    assert "pip install 'rawlab[plot]'" in r.output


def _half(tmp_path: Path) -> Path:
    data = (CAP / "tcp-loss.pcap").read_bytes()
    half = tmp_path / "half.pcap"
    half.write_bytes(data[: len(data) // 2])
    return half


@pytest.mark.parametrize("mode", [[], ["--json"], ["--ladder"], ["--follow", "0"]])
def test_a_truncated_file_prints_everything_then_the_error(tmp_path: Path,
                                                           mode: list[str]) -> None:
    """Issue 14: every complete record is analysed and every output printed (connection
    records, the table, the ladder's summary, the followed stream), then the one-line
    error, exit 5 — as `read` does."""
    r = CliRunner().invoke(main, ["tcp", str(_half(tmp_path)), *mode])
    assert r.exit_code == 5
    assert "truncated record" in r.stderr and r.stderr.count("\n") == 1
    out = r.stdout
    if mode == ["--json"]:
        recs = [json.loads(x) for x in out.splitlines()]
        assert recs[-1]["type"] == "connection" and recs[-1]["closed"] == "end"
        assert sum(x["type"] == "segment" for x in recs) > 100
    elif mode == ["--ladder"]:
        assert out.splitlines()[-1].startswith("stream 0: state ")
    elif mode:
        assert "=== 10.77.0.1:" in out and "bytes in order" in out
    else:
        assert out.splitlines()[0].split()[:4] == ["stream", "client", "server", "state"]


def test_count_applies_to_files() -> None:
    r = run(str(CAP / "tcp-loss.pcap"), "--json", "-c", "5")
    segs = [x for x in map(json.loads, r.output.splitlines()) if x["type"] == "segment"]
    assert [s["frame"] for s in segs] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("opt", ["--stream", "--follow"])
def test_a_stream_that_does_not_exist_is_an_error(opt: str) -> None:
    r = CliRunner().invoke(main, ["tcp", str(CAP / "tcp-clean.pcap"), opt, "5"])
    assert r.exit_code == 1
    assert r.stderr.strip() == "rawlab: error: no TCP stream 5: the capture has streams 0-0"


def test_table_from_columns_names_the_processes_a_pcapng_file_holds(tmp_path: Path) -> None:
    """A pcapng written with `capture --processes` gives the columnar table its process
    columns, as the exact analyser's table."""
    from rawlab.pcap.reader import open_file
    from rawlab.pcap.writer import CaptureWriter
    from rawlab.records import PROCESS, SocketOwner

    cli = SocketOwner(PROCESS, pid=4242, comm="client-app")
    srv = SocketOwner(PROCESS, pid=77, comm="server-app")
    out = tmp_path / "owned.pcapng"
    w = CaptureWriter(str(out))
    with open_file(CAP / "tcp-reset.pcap") as cap:
        for rec in cap:
            src_is_client = rec.data[26:30] == bytes((10, 77, 0, 1))
            rec.owners = (cli, srv) if src_is_client else (srv, cli)
            w.write(rec, None)
    w.close()
    fast, exact = run(str(out)), run(str(out), "--exact")
    assert fast.exit_code == 0 and exact.exit_code == 0, fast.output + exact.output
    head, row = fast.output.splitlines()[:2]
    assert head == exact.output.splitlines()[0] and "client process" in head
    assert "client-app[4242]" in row and "server-app[77]" in row
    # both tables agree on everything but the counts their definitions make
    assert row.split()[:10] == exact.output.splitlines()[1].split()[:10]
    # --json from batches (the records with owners read per packet) names them too
    import io

    from rawlab import pipeline
    from rawlab.decode.columns import open_batches
    from rawlab.present.tcp import JsonSink

    per_packet, batches = io.StringIO(), io.StringIO()
    with open_file(out) as cap:
        pipeline.run_tcp(cap, [JsonSink(per_packet)])
    with open_batches(out) as src:
        pipeline.run_tcp_batches(src, [JsonSink(batches, hold=1024)])
    assert batches.getvalue() == per_packet.getvalue()
    assert '"comm": "client-app"' in batches.getvalue()


def _segments(path: Path) -> list[Any]:
    from rawlab.analysis.tcp import Segment, analyse

    with open_file(path) as cap:
        return [e for e in analyse(cap) if isinstance(e, Segment)]


def test_compiled_segment_records_are_the_python_ones() -> None:
    """present.tcp.segments_json (the compiled loop `tcp FILE --json` writes with) gives
    segment_json's text for every segment of every capture in captures/ and of tcpdump's
    TCP captures; and for the shapes it hands back to segment_json: options beyond
    timestamps, an address that is not bytes, one of another length, None fields, a
    bool, an object that is not a Segment (the same error)."""
    import dataclasses

    from app_tshark import corpus_dir

    from rawlab.present.tcp import segment_json, segments_json

    corpus = corpus_dir()
    if corpus is None:
        pytest.skip("tcpdump's corpus not found (RAWLAB_CORPUS, ../shared)")
    paths = sorted(CAP.glob("*.pcap*"))
    paths += sorted(p for p in corpus.iterdir()
                    if p.suffix in (".pcap", ".pcapng") and p.stat().st_size < 400_000)
    total = slow = 0
    for p in paths:
        try:
            segs = _segments(p)
        except Exception:  # (a corpus file broken on purpose: read per packet elsewhere)
            continue
        if segs:
            assert segments_json(segs) == "".join(map(segment_json, segs)), p.name
            total += len(segs)
            slow += sum(bool(s.options) and set(s.options) != {"ts"} for s in segs)
    assert total > 2500 and 0 < slow < total / 4
    seg = _segments(CAP / "tcp-loss.pcap")[5]
    odd = [
        dataclasses.replace(seg, options={"sack": ((1, 2),), "ts": (3, 4)}),
        dataclasses.replace(seg, options={"ts": (2**40, 0)}, capture_loss=True),
        dataclasses.replace(seg, src_addr=bytearray(seg.src_addr)),
        dataclasses.replace(seg, dst_addr=b"\x01\x02\x03\x04\x05\x06", dup_ack_num=3,
                            dup_ack_frame=2, ack_rtt_ns=None, bytes_in_flight=2**70),
        dataclasses.replace(seg, src_addr=bytes(range(16)), dst_addr=bytes(16),
                            analysis=("tcp.analysis.retransmission", "tcp.analysis.lost"),
                            ts_ns=-5, window=True),
        dataclasses.replace(seg, flags=511),
    ]
    assert segments_json(odd) == "".join(map(segment_json, odd))
    assert segments_json([]) == ""
    # a callback that changes the segments under the loop: their fields are held
    from rawlab import _kernels
    from rawlab.present.tcp import _FLAGS

    many = [dataclasses.replace(seg, analysis=("x",), options={"sack": ((1, 2),) * 40})
            for _ in range(50)]

    def analysis(names: tuple[str, ...]) -> str:
        for s in many:
            s.options = {}
        return '["x"]'

    text = _kernels.segments_json(many, _FLAGS, analysis, segment_json)
    assert text.count("\n") == 50 and text.splitlines()[0].endswith("[1, 2]]}}")
    with pytest.raises(AttributeError):
        segments_json([seg, object()])


def test_the_exact_analyser_reads_the_same_from_batches() -> None:
    """pipeline.run_tcp_batches (the segments the columns hold read from them, the rest
    per packet: analysis.tcp.frontend) gives run_tcp's NDJSON on every capture in
    captures/ and every one of tcpdump's corpus under 200 kB, in batches of 7 rows
    (the analyser's state carried across) and of the default size."""
    import io

    from app_tshark import corpus_dir

    from rawlab import pipeline
    from rawlab.decode.columns import open_batches
    from rawlab.errors import RawlabError
    from rawlab.present.tcp import JsonSink

    corpus = corpus_dir()
    if corpus is None:
        pytest.skip("tcpdump's corpus not found (RAWLAB_CORPUS, ../shared)")
    paths = sorted(CAP.glob("*.pcap*")) + sorted(
        p for p in corpus.iterdir()
        if p.suffix in (".pcap", ".pcapng") and p.stat().st_size < 200_000)

    def run(p: Path, rows: int | None) -> tuple[str, str | None]:
        out = io.StringIO()
        try:
            if rows is None:
                with open_file(p) as cap:
                    pipeline.run_tcp(cap, [JsonSink(out)])
            else:
                with open_batches(p, rows=rows) as src:
                    pipeline.run_tcp_batches(src, [JsonSink(out, hold=64)])
        except RawlabError as exc:
            return out.getvalue(), exc.message
        return out.getvalue(), None

    segments = 0
    for p in paths:
        want = run(p, None)
        assert run(p, 7) == want, p.name
        assert run(p, 8192) == want, p.name
        segments += want[0].count('"type": "segment"')
    assert segments > 2500


@pytest.mark.parametrize("args", [["tcp", "--json"], ["tcp"], ["tcp", "--exact"],
                                  ["read"], ["read", "--json"], ["read", "-v"]])
def test_a_user_timeout_option_is_read(tmp_path: Path, args: list[str]) -> None:
    """A SYN with a User Timeout option (RFC 5482, kind 28, 4 bytes) was an internal
    error in every command (the options summary knew its value but had no key for it):
    it is read, the summary keeping its bytes as other kinds' (`"28": "812c"`)."""
    from tcp_synth import T0, tcp_ipv4

    from rawlab.pcap.writer import PcapWriter

    eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
    frame = eth + tcp_ipv4(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 40000, 80, 100, 0,
                           0x02, 65535, b"", bytes([28, 4, 0x81, 0x2C]))
    path = tmp_path / "uto.pcap"
    with PcapWriter(path, 1) as w:
        w.write(T0, frame, len(frame))
    r = CliRunner().invoke(main, [args[0], str(path), *args[1:]], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    if args == ["tcp", "--json"]:
        assert json.loads(r.output.splitlines()[0])["options"] == {"28": "812c"}
    if args == ["read", "--json"]:
        assert json.loads(r.output)["tcp"]["options"] == [
            {"kind": 28, "name": "user_timeout", "value": 0x812C}]
