"""vm tier: `rawlab vsock capture` through vsockmon sees a loopback (CID 1) session —
request, response, data with EOM/EOR on seqpacket, shutdown, rst — and tshark reads it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

RAWLAB = str(Path(sys.executable).with_name("rawlab"))
PORT = 47123


def exchange(stype: int, port: int, messages: list[bytes]) -> list[bytes]:
    srv = socket.socket(socket.AF_VSOCK, stype)
    srv.bind((1, port))
    srv.listen(1)
    cli = socket.socket(socket.AF_VSOCK, stype)
    cli.settimeout(10)
    cli.connect((1, port))
    conn, _ = srv.accept()
    got = []
    for m in messages:
        cli.send(m)
        got.append(conn.recv(1000))
    cli.close()
    conn.close()
    srv.close()
    return got


def test_capture_sees_stream_and_seqpacket_sessions(tmp_path: Path) -> None:
    out = Path("/tmp/vsock-capture.pcapng")
    p = subprocess.Popen([RAWLAB, "vsock", "capture", "-w", str(out), "-q",
                          "--port", str(PORT)], stderr=subprocess.PIPE, text=True)
    assert p.stderr is not None
    line = p.stderr.readline()
    assert "capturing vsock on rlvsockmon" in line, line
    assert exchange(socket.SOCK_STREAM, PORT, [b"hello"]) == [b"hello"]
    assert exchange(socket.SOCK_SEQPACKET, PORT, [b"one", b"two"]) == [b"one", b"two"]
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    recs = [json.loads(x) for x in subprocess.run(
        [RAWLAB, "read", str(out), "--json"], capture_output=True, text=True,
        check=True).stdout.splitlines()]
    virtio = [r["vsock"]["virtio"] for r in recs]
    ops = [v["op"] for v in virtio]
    assert ops.count(1) == 2 and ops.count(2) == 2  # a request and a response per session
    assert 4 in ops  # shutdown
    data = [v for v in virtio if v["op"] == 5]
    stream = [v for v in data if v["type"] == 1]
    seqp = [v for v in data if v["type"] == 2]
    assert [v["len"] for v in stream] == [5]
    assert [v["len"] for v in seqp] == [3, 3]
    assert all(v["flags"] & 1 for v in seqp)  # EOM on every seqpacket message
    assert all(PORT in (r["vsock"]["src_port"], r["vsock"]["dst_port"]) for r in recs)
    assert all(r["vsock"]["src_cid"] == 1 and r["vsock"]["dst_cid"] == 1 for r in recs)
    lines = subprocess.run([RAWLAB, "read", str(out)], capture_output=True, text=True,
                           check=True).stdout
    assert "rw seqpacket [EOM" in lines and "request stream" in lines
    t = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "vsock.src_cid",
                        "-e", "vsock.dst_port"], capture_output=True, text=True, check=True)
    rows = [r.split("\t") for r in t.stdout.splitlines()]
    assert len(rows) == len(recs)
    assert all(r[0] == "1" for r in rows)
    # the vsockmon link is gone
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                           check=True).stdout
    assert "rlvsockmon" not in links
