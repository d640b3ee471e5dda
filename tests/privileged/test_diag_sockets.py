"""`rawlab netlink sockets` / `genl` against `ss` and `genl ctrl list`, in a namespace.

Every socket is opened by the test inside a namespace it created (`lab`); the
facts rawlab reports must equal `ip netns exec NS ss ...` and the kernel's own
TCP_INFO for those sockets.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rawlab.decode.tcp_info import TcpInfo
from rawlab.lab.netns import Lab, Netns

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def rawlab(ns: Netns, *args: str) -> list[dict[str, Any]]:
    p = subprocess.run([RAWLAB, "netlink", "sockets", "--netns", ns.name, "--json", *args],
                       capture_output=True, text=True, timeout=30, check=False)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()]


def ss(ns: Netns, *args: str) -> list[dict[str, Any]]:
    """`ss -HO ARGS` lines as {state, recv_q, send_q, local, peer, kv: {key: value}}."""
    out = ns.run(["ss", "-HO", *args]).stdout
    rows = []
    for line in out.splitlines():
        tok = line.split()
        if args and "x" in args[0]:  # unix: netid first
            tok = tok[1:]
        kv: dict[str, str] = {}
        for t in tok[5:]:
            if ":" in t and not t.startswith(("users:", "skmem:", "bbr:")):
                k, _, v = t.partition(":")
                kv[k] = v
        rows.append({"state": tok[0], "recv_q": int(tok[1]), "send_q": int(tok[2]),
                     "local": tok[3], "peer": tok[4], "kv": kv, "line": line})
    return rows


def ep(d: dict[str, Any]) -> str:
    addr = d["addr"]
    port = d["port"] or "*"
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


@pytest.fixture
def ns(lab: Lab) -> Netns:
    return lab.netns("diag")


def tcp_pair(ns: Netns, family: int = socket.AF_INET, host: str = "127.0.0.1",
             ) -> tuple[socket.socket, socket.socket, socket.socket]:
    """A listener, and an established pair with asymmetric window scales and data queued."""
    with ns.entered():
        srv = socket.socket(family, socket.SOCK_STREAM)
        srv.bind((host, 0))
        srv.listen(8)
        cli = socket.socket(family, socket.SOCK_STREAM)
        # a small receive buffer before connect: the client's SYN offers a small wscale,
        # the server's SYN-ACK a big one, so the two nibbles differ
        cli.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        cli.connect(srv.getsockname()[:2])
    acc, _ = srv.accept()
    cli.sendall(b"x" * 3000)  # the server does not read: its Recv-Q holds 3000
    time.sleep(0.2)
    return srv, cli, acc


def test_tcp_equals_ss(ns: Netns) -> None:
    srv, cli, acc = tcp_pair(ns)
    with srv, cli, acc:
        ours = rawlab(ns, "-a", "-i")
        theirs = ss(ns, "-tain")
        assert len(ours) == len(theirs) == 3
        by_local = {(r["state"], ep(r["local"]), ep(r["peer"])): r for r in ours}
        for t in theirs:
            r = by_local[(t["state"], t["local"], t["peer"])]
            assert (r["recv_q"], r["send_q"]) == (t["recv_q"], t["send_q"]), t["line"]
            info = r["tcp_info"]
            assert r["cong"] in t["line"]
            if t["state"] == "LISTEN":
                assert info["snd_cwnd"] == int(t["kv"]["cwnd"])
                continue
            assert f"{info['snd_wscale']},{info['rcv_wscale']}" == t["kv"]["wscale"]
            assert info["snd_mss"] == int(t["kv"]["mss"])
            assert info["snd_cwnd"] == int(t["kv"]["cwnd"])
            assert info["advmss"] == int(t["kv"]["advmss"])
            assert info["rcv_mss"] == int(t["kv"]["rcvmss"])
            rtt, rttvar = (float(x) for x in t["kv"]["rtt"].split("/"))
            assert abs(info["rtt"] / 1000 - rtt) < 1 and abs(info["rttvar"] / 1000 - rttvar) < 1
            assert info.get("bytes_acked", 0) == int(t["kv"].get("bytes_acked", 0))
            assert info.get("bytes_received", 0) == int(t["kv"].get("bytes_received", 0))
        assert by_local[("ESTAB", ep_of(srv, acc), ep_of(cli))]["recv_q"] == 3000


def ep_of(*socks: socket.socket) -> str:
    host, port = socks[-1].getsockname()[:2]
    return f"{host}:{port}"


def test_wscale_nibbles_match_the_handshake(ns: Netns) -> None:
    srv, cli, acc = tcp_pair(ns)
    with srv, cli, acc:
        recs = {r["local"]["port"]: r for r in rawlab(ns, "-i")}
        c = recs[cli.getsockname()[1]]["tcp_info"]
        s = recs[acc.getsockname()[1]]["tcp_info"]
        # what each SYN offered: the client's rcv scale is the server's snd scale
        assert c["rcv_wscale"] == s["snd_wscale"] and c["snd_wscale"] == s["rcv_wscale"]
        assert c["rcv_wscale"] != c["snd_wscale"]  # asymmetric: a swapped nibble would show
        # the kernel's own TCP_INFO on each socket, an independent route
        for sock, rec in ((cli, c), (acc, s)):
            k = TcpInfo(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512))
            assert (k.snd_wscale, k.rcv_wscale) == (rec["snd_wscale"], rec["rcv_wscale"])
            assert k.snd_mss == rec["snd_mss"] and k.length == 280
        theirs = {t["local"]: t["kv"]["wscale"] for t in ss(ns, "-ti")}
        assert theirs[ep_of(cli)] == f"{c['snd_wscale']},{c['rcv_wscale']}"


def test_tcp_ipv6_and_filters(ns: Netns) -> None:
    srv, cli, acc = tcp_pair(ns, socket.AF_INET6, "::1")
    with srv, cli, acc:
        assert {r["state"] for r in rawlab(ns)} == {"ESTAB"}  # default: not listening
        listen = rawlab(ns, "-l")
        assert [r["state"] for r in listen] == ["LISTEN"] and listen[0]["family"] == "inet6"
        assert rawlab(ns, "-4") == []
        assert len(rawlab(ns, "--state", "established", "--state", "listening")) == 3


def test_text_output_and_processes(ns: Netns) -> None:
    srv, cli, acc = tcp_pair(ns)
    with srv, cli, acc:
        p = subprocess.run([RAWLAB, "netlink", "sockets", "--netns", ns.name, "-a", "-i", "-p"],
                           capture_output=True, text=True, timeout=30, check=True)
        lines = p.stdout.splitlines()
        assert lines[0].split()[:4] == ["Netid", "Type", "State", "Recv-Q"]
        rows = [ln for ln in lines[1:] if not ln.startswith("\t")]
        assert len(rows) == 3 and all(f"pid={os.getpid()}" in r for r in rows)
        infos = [ln for ln in lines if ln.startswith("\t")]
        assert any(re.search(r"wscale:\d+,\d+ .*rtt:[\d.]+/[\d.]+", x) for x in infos)
        assert all("skmem:(" in x for x in infos)


def test_udp(ns: Netns) -> None:
    with ns.entered():
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with a, b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        b.connect(a.getsockname())
        b.send(b"hello")
        time.sleep(0.1)
        conn = rawlab(ns, "-u")
        assert [(r["state"], r["local"]["port"], r["peer"]["port"]) for r in conn] == [
            ("ESTAB", b.getsockname()[1], a.getsockname()[1])]
        unconn = rawlab(ns, "-u", "-l")
        assert [(r["state"], r["local"]["port"]) for r in unconn] == [
            ("UNCONN", a.getsockname()[1])]
        theirs = ss(ns, "-uaHn")
        ours = {(r["state"], ep(r["local"]), r["recv_q"]) for r in rawlab(ns, "-u", "-a")}
        assert ours == {(t["state"], t["local"], t["recv_q"]) for t in theirs}
        assert unconn[0]["recv_q"] > 0  # the datagram waits in a's queue


def test_unix_named_pair(ns: Netns) -> None:
    name = f"\0rawlab-diag-{os.getpid()}"
    with ns.entered():
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        srv.bind(name)
        srv.listen(1)
        cli = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cli.connect(name)
    acc, _ = srv.accept()
    with srv, cli, acc:
        cli.send(b"abc")
        recs = rawlab(ns, "-x", "-a")
        by_ino = {r["inode"]: r for r in recs}
        lst = by_ino[os.fstat(srv.fileno()).st_ino]
        assert lst["state"] == "LISTEN" and lst["type"] == "seqpacket"
        assert lst["local"]["path"] == "@" + name[1:] and lst["local"]["abstract"]
        c = by_ino[os.fstat(cli.fileno()).st_ino]
        a = by_ino[os.fstat(acc.fileno()).st_ino]
        assert c["peer"]["inode"] == a["inode"] and a["peer"]["inode"] == c["inode"]
        assert a["local"]["path"] == "@" + name[1:]
        assert c["state"] == a["state"] == "ESTAB"
        theirs = ns.run(["ss", "-xaH"]).stdout
        assert f"@{name[1:]}" in theirs and str(a["inode"]) in theirs


def test_netlink_socket(ns: Netns) -> None:
    with ns.entered():
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    with s:
        s.bind((0, 1 | 4))  # RTNLGRP_LINK, RTNLGRP_NEIGH (group bits 1 and 3)
        portid = s.getsockname()[0]
        ino = os.fstat(s.fileno()).st_ino
        recs = [r for r in rawlab(ns, "--netlink", "-i") if r["inode"] == ino]
        assert len(recs) == 1
        r = recs[0]
        assert r["protocol_name"] == "route" and r["type"] == "raw"
        assert r["local"]["portid"] == portid
        assert r["extra"]["groups"] == [1, 3]


def test_packet_socket(ns: Netns) -> None:
    with ns.entered():
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    with s:
        s.bind(("lo", 0x0003))
        recs = rawlab(ns, "--packet")
        assert len(recs) == 1
        r = recs[0]
        assert r["local"] == {"protocol": 3, "ifindex": 1}
        assert r["inode"] == os.fstat(s.fileno()).st_ino and r["type"] == "raw"
        text = subprocess.run([RAWLAB, "netlink", "sockets", "--netns", ns.name, "--packet"],
                              capture_output=True, text=True, check=True).stdout
        assert "ALL:lo" in text


def test_vsock_without_vsock_diag_is_one_line(ns: Netns) -> None:
    # the build machine has no vsock_diag; this only asks sock_diag, it opens no AF_VSOCK socket
    p = subprocess.run([RAWLAB, "netlink", "sockets", "--netns", ns.name, "--vsock"],
                       capture_output=True, text=True, timeout=30, check=False)
    if p.returncode == 0:
        pytest.skip("vsock_diag is loaded here; the vm tier covers its output")
    assert p.returncode == 4, p.stderr
    assert len(p.stderr.splitlines()) == 1 and "modprobe vsock_diag" in p.stderr


def test_genl_equals_genl_ctrl_list(ns: Netns) -> None:
    p = subprocess.run([RAWLAB, "netlink", "genl", "--json", "--netns", ns.name],
                       capture_output=True, text=True, timeout=30, check=True)
    ours = {f["name"]: f for f in map(json.loads, p.stdout.splitlines())}
    out = ns.run(["genl", "ctrl", "list"]).stdout
    theirs = dict(re.findall(r"Name: (\S+)\s*\n\s*ID: (0x[0-9a-f]+)", out))
    assert {n: f["id"] for n, f in ours.items()} == {n: int(i, 16) for n, i in theirs.items()}
    assert ours["nlctrl"]["id"] == 16 and ours["nlctrl"]["version"] == 2
    assert {"name": "notify", "id": 16} in ours["nlctrl"]["mcast_groups"]
    for block in out.split("Name: ")[1:]:
        name = block.split()[0]
        ops_text, _, groups_text = block.partition("multicast groups")
        ops = [(int(i, 16), int(c, 16) if c else None) for i, c in re.findall(
            r"#\d+:\s+ID-(0x[0-9a-f]+) *\n(?:\s*Capabilities \((0x[0-9a-f]+)\))?", ops_text)]
        assert [o["id"] for o in ours[name]["ops"]] == [i for i, _c in ops], name
        for o, (_i, caps) in zip(ours[name]["ops"], ops, strict=True):
            assert caps is None or o["flags"] == caps, name
        groups = [(n, int(i, 16)) for i, n in re.findall(r"ID-(0x[0-9a-f]+)\s+name: (\S+)",
                                                         groups_text)]
        assert [(g["name"], g["id"]) for g in ours[name]["mcast_groups"]] == groups, name
