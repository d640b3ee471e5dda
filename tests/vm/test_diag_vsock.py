"""vm tier: `rawlab netlink sockets --vsock` over vsock_loopback (CID 1) inside the lab guest.

Runs inside ONE virtme-ng guest (tests/conftest.py) with vsock_loopback and
vsock_diag loaded; CID 1 is the guest itself, so nothing here reaches a real
hypervisor.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

RAWLAB = str(Path(sys.executable).with_name("rawlab"))
VMADDR_CID_LOCAL = 1
ANY = 0xFFFFFFFF


def rawlab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RAWLAB, "netlink", "sockets", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def pair(stype: int) -> tuple[socket.socket, socket.socket, socket.socket]:
    srv = socket.socket(socket.AF_VSOCK, stype)
    srv.bind((ANY, ANY))
    srv.listen(4)
    cli = socket.socket(socket.AF_VSOCK, stype)
    cli.settimeout(10)
    cli.connect((VMADDR_CID_LOCAL, srv.getsockname()[1]))
    acc, _ = srv.accept()
    return srv, cli, acc


def by_inode(recs: list[dict[str, Any]], s: socket.socket) -> dict[str, Any]:
    ino = os.fstat(s.fileno()).st_ino
    found = [r for r in recs if r["inode"] == ino]
    assert len(found) == 1, (ino, recs)
    return found[0]


def test_vsock_stream_and_seqpacket_listed_by_type() -> None:
    socks = [*pair(socket.SOCK_STREAM), *pair(socket.SOCK_SEQPACKET)]
    try:
        p = rawlab("--vsock", "-a", "--json")
        assert p.returncode == 0, p.stderr
        recs = [json.loads(line) for line in p.stdout.splitlines()]
        for (srv, cli, acc), kind in ((socks[:3], "stream"), (socks[3:], "seqpacket")):
            lst, c, a = by_inode(recs, srv), by_inode(recs, cli), by_inode(recs, acc)
            port = srv.getsockname()[1]
            assert lst["type"] == c["type"] == a["type"] == kind
            assert lst["state"] == "LISTEN" and lst["local"] == {"cid": ANY, "port": port}
            assert c["state"] == a["state"] == "ESTAB"
            assert c["peer"] == {"cid": VMADDR_CID_LOCAL, "port": port}
            assert a["local"]["port"] == port and a["peer"]["port"] == c["local"]["port"]
            assert a["peer"]["cid"] == VMADDR_CID_LOCAL
            # a connected socket's local CID is what getsockname says (ANY on 6.1 loopback)
            assert (c["local"]["cid"], c["local"]["port"]) == cli.getsockname()
            assert c["family"] == "vsock" and c["extra"]["msg_len"] >= 32
        print("vsock_diag_msg bytes:", {r["extra"]["msg_len"] for r in recs})

        text = rawlab("--vsock", "-a")
        assert text.returncode == 0, text.stderr
        rows = text.stdout.splitlines()
        assert rows[0].split()[:3] == ["Netid", "Type", "State"]
        seq_rows = [r for r in rows if " SEQPACKET " in r]
        assert len(seq_rows) == 3 and all(r.startswith("vsock") for r in seq_rows)
        assert any("LISTEN" in r and f"*:{socks[3].getsockname()[1]}" in r for r in seq_rows)
        assert sum(" STREAM " in r for r in rows) == 3

        listening = [json.loads(x) for x in rawlab("--vsock", "-l", "--json").stdout.splitlines()]
        assert {r["type"] for r in listening} == {"stream", "seqpacket"}
        assert all(r["state"] == "LISTEN" for r in listening)
    finally:
        for s in socks:
            s.close()


def test_tcp_info_in_guest_kernel() -> None:
    """Debian 6.1's tcp_info is 232 bytes: rawlab decodes that much and no more."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    with srv, socket.create_connection(srv.getsockname()) as cli:
        acc, _ = srv.accept()
        with acc:
            p = rawlab("-i", "--json")
            assert p.returncode == 0, p.stderr
            rec = next(json.loads(x) for x in p.stdout.splitlines()
                       if json.loads(x)["local"]["port"] == cli.getsockname()[1])
            raw = cli.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512)
            assert rec["tcp_info_len"] == len(raw)
            assert rec["tcp_info"]["rcv_wscale"] == raw[6] >> 4
            assert rec["tcp_info"]["snd_wscale"] == raw[6] & 0x0F
            if len(raw) < 280:
                assert "accecn_opt_seen" not in rec["tcp_info"]
