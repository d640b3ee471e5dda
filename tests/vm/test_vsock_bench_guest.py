"""vm tier: `rawlab vsock bench` against `bench-server` over CID 1 (small and quick)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from rawlab import cli

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def check_bench(kind: str) -> None:
    srv = subprocess.Popen([RAWLAB, "vsock", "bench-server", "any", "--type", kind, "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert srv.stdout is not None
        first = json.loads(srv.stdout.readline())
        assert first["schema"] == "rawlab.vsock.bench-server/1"
        port = first["local"]["port"]
        res = CliRunner().invoke(cli.main, [
            "vsock", "bench", f"1:{port}", "--type", kind, "--json", "--size", "4K,64K",
            "--bytes", "1M", "--count", "200", "--connects", "10"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        assert doc["schema"] == "rawlab.vsock.bench/1" and doc["type"] == kind
        assert [t["msg_size"] for t in doc["throughput"]] == [4096, 65536]
        for t in doc["throughput"]:
            assert t["verified"] and t["bytes"] == 1 << 20 and t["bytes_per_s"] > 0
        lat = doc["latency"][0]
        assert lat["req_size"] == 1 and lat["count"] == 200
        assert 0 < lat["p50_ns"] <= lat["p99_ns"] <= lat["p999_ns"] <= lat["max_ns"]
        assert doc["connect"]["count"] == 10
    finally:
        srv.terminate()
        out, _ = srv.communicate(timeout=30)
    sessions = [json.loads(line) for line in out.splitlines()]
    tp = [s for s in sessions if s["mode"] == "throughput"]
    assert [s["bytes"] for s in tp] == [1 << 20, 1 << 20]
    assert all(s["error"] is None for s in sessions)


def test_bench() -> None:
    check_bench("stream")
    check_bench("seqpacket")
