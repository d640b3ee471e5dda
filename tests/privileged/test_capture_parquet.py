"""`rawlab capture --parquet` end to end, in namespaces: the packets table of a live
capture equals the pcapng file the same capture wrote (read back by `read --parquet`);
-G makes one whole file per interval; a hidden file is all a SIGKILL leaves."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_capture_cli import RAWLAB, blast, start

from rawlab.lab.netns import Lab

COLUMNS = ["frame", "ts_ns", "caplen", "wirelen", "interface_name", "linktype_name",
           "layers", "src", "dst", "sport", "dport", "udp_length", "ip4_id", "ip4_ttl",
           "l4_csum", "payload_length", "eth_src", "eth_dst"]


@pytest.fixture
def pair(lab: Lab):
    a, b = lab.netns("a"), lab.netns("b")
    lab.veth(a, b, "10.66.0.1/24", "10.66.0.2/24", offloads=False)
    return a, b


def stop(p) -> str:
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    return err


def test_live_rows_equal_the_files_rows(pair, tmp_path: Path) -> None:
    import subprocess

    a, _ = pair
    live, pcapng, again = tmp_path / "live.parquet", tmp_path / "c.pcapng", tmp_path / "r.parquet"
    p = start(a, "-w", str(pcapng), "--parquet", str(live), "udp port 9000")
    blast(a, "10.66.0.2", 300)
    time.sleep(0.3)
    err = stop(p)
    assert "300 packets captured" in err and f"wrote {live}" in err
    subprocess.run([RAWLAB, "read", str(pcapng), "--parquet", str(again)], check=True)
    got, want = pq.read_table(live), pq.read_table(again)
    assert got.num_rows == want.num_rows == 300
    assert got.select(COLUMNS).to_pylist() == want.select(COLUMNS).to_pylist()
    row = got.to_pylist()[0]
    assert (row["interface_name"], row["layers"], row["src"], row["dst"], row["dport"],
            row["payload_length"], row["file"]) == (
        "veth0", "eth:ipv4:udp", "10.66.0.1", "10.66.0.2", 9000, 16, None)


def test_rotation_one_whole_file_per_interval(pair, tmp_path: Path) -> None:
    a, _ = pair
    p = start(a, "--parquet", str(tmp_path / "lake"), "-G", "1", "udp port 9000")
    for _ in range(3):
        blast(a, "10.66.0.2", 50)
        time.sleep(1.1)
    err = stop(p)
    files = sorted((tmp_path / "lake").rglob("*.parquet"))
    assert len(files) >= 3, err
    assert all(f.parent.parent.name.startswith("date=") and f.parent.name.startswith("hour=")
               and f.name.startswith("capture-") for f in files)
    assert sum(pq.read_table(f).num_rows for f in files) == 150
    assert not list((tmp_path / "lake").rglob(".*"))  # nothing half-written left


def test_sigkill_leaves_only_hidden_files(pair, tmp_path: Path) -> None:
    a, _ = pair
    out = tmp_path / "x.parquet"
    p = start(a, "--parquet", str(out), "udp port 9000")
    blast(a, "10.66.0.2", 100)
    time.sleep(0.3)
    p.kill()
    p.communicate(timeout=20)
    assert not out.exists()  # never half a file under its name
    assert [f.name for f in tmp_path.iterdir()] == [".x.parquet.partial"]
