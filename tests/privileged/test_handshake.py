"""The main job: `rawlab handshake` captures and explains a real handshake, agrees
with tshark on every segment, leaves nothing behind, and fails clearly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rawlab.lab import handshake as demo
from rawlab.lab.netns import list_namespaces

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def test_demo_shows_the_handshake_and_cleans_up(tmp_path: Path) -> None:
    before = set(list_namespaces())
    out = tmp_path / "hs.pcapng"
    p = subprocess.run([RAWLAB, "handshake", "-w", str(out)], capture_output=True, text=True,
                       timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    rows = [line for line in lines if line[:6].strip().isdigit()]
    assert "├── SYN seq=0 win=64240 len=0" in rows[0]
    assert "├◀─ SYN,ACK seq=0 ack=1 " in rows[1]
    assert "├── ACK seq=1 ack=1 " in rows[2]
    assert "PSH,ACK seq=1 ack=1 " in rows[3] and "len=18" in rows[3]
    assert any("FIN,ACK" in r for r in rows)
    assert "[cksum partial]" in rows[0] and "cksum" not in rows[1]
    assert any("ack = the client's ISN + 1" in line for line in lines)
    assert any(line.startswith("handshake: frames 1, 2, 3 (SYN, SYN-ACK, ACK)") for line in lines)
    assert "0 dropped by the kernel" in lines[-2]
    made = {n for n in set(list_namespaces()) - before
            if n.startswith(("rl-client-", "rl-server-"))}
    assert not made  # everything it made is gone (other tests may run beside us)
    t = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "tcp.flags.str"],
                       capture_output=True, text=True, check=True).stdout.split("\n")
    assert len([x for x in t if x]) == len(rows)


@pytest.mark.parametrize("ipv6", [False, True])
def test_every_segment_agrees_with_tshark(tmp_path: Path, ipv6: bool) -> None:
    from rawlab.pcap.writer import CaptureWriter as Writer
    from rawlab.records import Interface

    res = demo.run(8081, b"hello handshake", 5000, ipv6=ipv6)
    path = tmp_path / "d.pcapng"
    w = Writer(str(path))
    for rec in res.records:
        w.write(rec, Interface(0, rec.linktype, 262144, "veth0"))
    w.close()
    fields = ["frame.number", "tcp.seq", "tcp.ack", "tcp.seq_raw", "tcp.len", "tcp.flags",
              "tcp.window_size", "tcp.analysis.initial_rtt"]
    argv = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=|"]
    for f in fields:
        argv += ["-e", f]
    rows = [r.split("|") for r in subprocess.run(argv, capture_output=True, text=True,
                                                check=True).stdout.splitlines()]
    segs = res.segments
    assert len(segs) == len(rows) >= 12
    for s, r in zip(segs, rows, strict=True):
        assert s.frame == int(r[0])
        assert s.seq_rel == int(r[1])
        assert s.ack_rel == int(r[2] or 0) or not s.flags & 0x10
        assert s.seq == int(r[3])
        assert s.len == int(r[4])
        assert s.flags == int(r[5], 16)
        assert s.window == int(r[6])
    hs = res.handshake
    assert hs is not None and hs.frames == (1, 2, 3)
    assert hs.irtt_ns == pytest.approx(float(rows[3][7]) * 1e9, abs=1000)
    assert res.received == b"hello handshake"
    assert sum(s.len for s in segs if s.dir == 1) == 5000


def test_without_privilege_one_line_and_exit_3() -> None:
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", RAWLAB,
                        "handshake"], capture_output=True, text=True, timeout=60, cwd="/",
                       check=False)
    assert p.returncode == 3, p.stderr
    assert p.stderr.startswith("rawlab: error: create network namespace")
    assert "needs CAP_SYS_ADMIN" in p.stderr and p.stderr.count("\n") == 1
