"""`rawlab raw handshake`: a whole TCP connection from user space against a real listener
in the peer namespace; its data arrives; the nftables table is gone afterwards, also
after SIGTERM or Ctrl-C mid-connection (and the peer was reset, not left hanging)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _pairs import pair

from rawlab.analysis.tcp import Segment
from rawlab.raw import nft
from rawlab.raw.handshake import run

RAWLAB = str(Path(sys.executable).with_name("rawlab"))
PORT = 5000
TCP_CLOSE = 7


class Server:
    """A Python socket server in namespace `ns`: reads until EOF (or holds), replies, closes."""

    def __init__(self, ns: Any, addr: str, reply: bytes = b"", hold: bool = False) -> None:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        with ns.entered():
            self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.bind((addr, PORT))
        self.sock.listen()
        self.sock.settimeout(10)
        self.reply, self.hold = reply, hold
        self.got = b""
        self.error: str | None = None
        self.got_data = threading.Event()
        self.release = threading.Event()
        self.state = 0  # TCP_INFO tcpi_state of the held connection when released
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(10)
                while part := conn.recv(4096):
                    self.got += part
                    self.got_data.set()
                if self.hold:  # half-closed by the client: stay in CLOSE-WAIT until released
                    self.release.wait(15)
                    self.state = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
                    return
                if self.reply:
                    conn.sendall(self.reply)
        except OSError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.sock.close()


def rawlab_tables(ns: Any) -> list[str]:
    return [t for t in nft.tables(ns.name) if t.startswith("rawlab_")]


@pytest.mark.parametrize(("target", "server_ip"), [("10.0.0.2", "10.0.0.2"),
                                                   ("fd00::2", "fd00::2")])
def test_user_space_connection_completes(lab: Any, target: str, server_ip: str) -> None:
    a, b = pair(lab)
    srv = Server(b, server_ip, reply=b"bye\n")
    data = b"hello from user space\n" * 3
    res = run(target, PORT, data, netns=a.name, timeout=5.0)
    srv.thread.join(5)
    assert srv.error is None
    assert srv.got == data  # the listener received exactly our bytes
    tcp = res.tcp
    assert tcp is not None and tcp.done and tcp.state == "TIME-WAIT"
    assert tcp.received == b"bye\n" and tcp.peer_fin
    assert res.table_removed and rawlab_tables(a) == []
    assert res.rst_dropped is not None and res.rst_dropped >= 1  # the kernel did try
    hs = res.handshake
    assert hs is not None and hs.frames == (1, 2, 3)
    segs = [e for e in res.events if type(e) is Segment]
    assert not any(s.flags & 0x04 for s in segs)  # no RST reached the wire
    assert any(s.flags & 0x01 and s.dir == 0 for s in segs)
    assert any(s.flags & 0x01 and s.dir == 1 for s in segs)
    assert all(s.checksum_status == "good" for s in segs)


def test_cli_ladder(lab: Any) -> None:
    a, b = pair(lab)
    srv = Server(b, "10.0.0.2")
    p = subprocess.run([RAWLAB, "raw", "handshake", "10.0.0.2", str(PORT), "--data", "ping\n",
                        "--netns", a.name], capture_output=True, text=True, timeout=20,
                       check=False)
    srv.thread.join(5)
    assert p.returncode == 0, p.stderr
    assert srv.got == b"ping\n"
    rows = [ln for ln in p.stdout.splitlines() if ln[:6].strip().isdigit()]
    assert "├── SYN seq=0" in rows[0] and "├◀─ SYN,ACK seq=0 ack=1" in rows[1]
    assert "├── ACK seq=1 ack=1" in rows[2] and "len=5" in rows[3]
    assert "✓ handshake complete (frames 1, 2, 3)" in p.stdout
    assert "table inet rawlab_" in p.stdout and "removed" in p.stdout.splitlines()[-1]
    assert rawlab_tables(a) == []


def test_refused_connection_leaves_no_table(lab: Any) -> None:
    a, _b = pair(lab)
    p = subprocess.run([RAWLAB, "raw", "handshake", "10.0.0.2", str(PORT + 1), "--netns",
                        a.name], capture_output=True, text=True, timeout=20, check=False)
    assert p.returncode == 6 and "nothing listens there" in p.stderr
    assert rawlab_tables(a) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_connection_removes_the_table(lab: Any, sig: int) -> None:
    a, b = pair(lab)
    srv = Server(b, "10.0.0.2", hold=True)  # never closes: we wait for its FIN
    proc = subprocess.Popen([RAWLAB, "raw", "handshake", "10.0.0.2", str(PORT), "--data",
                             "hold on\n", "--timeout", "20", "--netns", a.name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert srv.got_data.wait(10), "the data never arrived"
        assert len(rawlab_tables(a)) == 1  # mid-connection: the table is there
        time.sleep(0.1)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert rawlab_tables(a) == []
    srv.release.set()
    srv.thread.join(5)
    assert srv.got == b"hold on\n" and srv.error is None
    # our RST (SO_MARK lets it past our own rule) closed the server's side: without it the
    # socket would sit in CLOSE-WAIT (8); reset, it is CLOSE (7)
    assert srv.state == TCP_CLOSE


def test_a_killed_runs_table_is_removed_by_the_next_run(lab: Any) -> None:
    """SIGKILL leaves the nftables table behind; the next `raw handshake` removes tables whose
    owner is gone before it adds its own, and says so in one line."""
    a, b = pair(lab)
    dead = "rawlab_4194305_40001"  # a pid beyond pid_max
    a.run(["nft", "add", "table", "inet", dead])
    srv = Server(b, "10.0.0.2")
    p = subprocess.run([RAWLAB, "raw", "handshake", "10.0.0.2", str(PORT), "--netns", a.name],
                       capture_output=True, text=True, timeout=20, check=False)
    srv.thread.join(5)
    assert p.returncode == 0, p.stderr
    assert f"rawlab: removed 1 nftables table(s) left by killed runs: {dead}" in p.stderr
    assert rawlab_tables(a) == []
