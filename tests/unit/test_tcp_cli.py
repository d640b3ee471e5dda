"""`rawlab tcp` on the committed captures: table, NDJSON, follow, ladder, plot."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rawlab.cli import main

CAP = Path(__file__).resolve().parents[2] / "captures"


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["tcp", *args], catch_exceptions=False)


def test_table() -> None:
    r = run(str(CAP / "tcp-loss.pcap"))
    assert r.exit_code == 0, r.output
    head, row = r.output.splitlines()[:2]
    assert "state" in head and "history" in head
    assert " SF " in row and "10.77.0.1:" in row and "fast_retransmission=3" in row


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
