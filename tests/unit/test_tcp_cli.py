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
    assert run(str(CAP / "tcp-loss.pcap"), "--json", "--stream", "7").output == ""


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
