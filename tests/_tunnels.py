"""A TCP conversation through a real kernel tunnel between two namespaces, captured on
the underlay, and what rawlab and tshark make of it (issue 16: "real tunnel traffic
generated inside namespaces"). Used by the privileged tier (the tunnels this kernel
has) and the vm tier (Debian's kernel has them all)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from rawlab.analysis.tcp import ANALYSIS_NAMES
from rawlab.lab import traffic
from rawlab.lab.netns import Lab

RAWLAB = str(Path(sys.executable).with_name("rawlab"))
UNDER = ("10.88.0.1", "10.88.0.2")
INNER = ("192.168.88.1", "192.168.88.2")
INNER6 = ("fd00:88::1", "fd00:88::2")

#: kind -> (`ip link add tun0 type ...` arguments for side 0, given (local, remote),
#: the JSON layer that says so, inner IP family, whether the device carries Ethernet)
KINDS: dict[str, tuple[Any, str, int, bool]] = {
    "vxlan": (lambda lo, re: ["vxlan", "id", "42", "local", lo, "remote", re, "dstport",
                              "4789"], "vxlan", 4, True),
    "geneve": (lambda lo, re: ["geneve", "id", "42", "remote", re], "geneve", 4, True),
    "gretap": (lambda lo, re: ["gretap", "local", lo, "remote", re], "gre", 4, True),
    "gre": (lambda lo, re: ["gre", "local", lo, "remote", re], "gre", 4, False),
    "ipip": (lambda lo, re: ["ipip", "local", lo, "remote", re], "ipv4", 4, False),
    "sit": (lambda lo, re: ["sit", "local", lo, "remote", re], "ipv4", 6, False),
}


def kernel_has(kind: str) -> bool:
    """Whether this kernel makes a device of this kind (a throwaway namespace asks it)."""
    with Lab() as lab:
        ns = lab.netns("probe")
        args = KINDS[kind][0]("10.255.0.1", "10.255.0.2")
        return ns.run(["ip", "link", "add", "probe0", "type", *args], check=False
                      ).returncode == 0


def tunnel_capture(kind: str, path: Path) -> bytes:
    """Two namespaces joined by a veth (UNDER) and a tunnel of ``kind`` over it (INNER or
    INNER6 inside); one TCP connection through the tunnel, captured on a's veth by
    tcpdump into ``path``. Returns the request the server got."""
    make, _layer, fam, _eth = KINDS[kind]
    inner = INNER6 if fam == 6 else INNER
    with Lab() as lab:
        a, b = lab.netns("a"), lab.netns("b")
        lab.veth(a, b, f"{UNDER[0]}/24", f"{UNDER[1]}/24", offloads=False,
                 static_neighbours=True)
        for i, ns in enumerate((a, b)):
            lo, re = UNDER[i], UNDER[1 - i]
            ns.run(["ip", "link", "add", "tun0", "type", *make(lo, re)])
            ns.run(["ip", "addr", "add", f"{inner[i]}/{64 if fam == 6 else 24}", "dev", "tun0"])
            ns.run(["ip", "link", "set", "tun0", "up"])
            ns.run(["ethtool", "-K", "tun0", "tso", "off", "gso", "off", "gro", "off",
                    "tx", "off"], check=False)
        with traffic.tcpdump(a, "veth0", path, "ip"):  # the underlay is IPv4 only
            ex = traffic.tcp_exchange(b, a, inner[1], 8088, b"through the tunnel " * 200,
                                      b"and back " * 20, chunk=700)
        assert not ex.errors, ex.errors
        return ex.server_got


def through_tunnel(ls: list[str], layer: str, tshark: list[str]) -> None:
    """A frame is decoded through the tunnel layer. Geneve's source port is a hash of the
    inner flow anywhere in 1-65535: when it is another protocol's well-known port and the
    lower of the two (say 4789), rawlab decodes by that port, as tshark does (the lower
    port first), and the test checks that the two agree."""
    if layer in ls[1:]:
        return
    by_port = ls[ls.index("udp") + 1]
    assert layer not in tshark and by_port in tshark, (ls, tshark)


def check(kind: str, path: Path) -> None:
    """rawlab reads every tunnelled segment (the tunnel layer, then the inner TCP), its
    inner TCP fields are tshark's (the innermost tcp of each frame), and `rawlab tcp`
    (the columnar table and the exact analyser) sees the inner connection, whole."""
    _make, layer, fam, eth = KINDS[kind]
    inner = INNER6 if fam == 6 else INNER
    recs = [json.loads(x) for x in subprocess.run(
        [RAWLAB, "read", "--json", str(path)], capture_output=True, text=True,
        check=True).stdout.splitlines()]
    tcp_recs = [r for r in recs if "tcp" in r["layers"]]
    # (the rest: an Ethernet tunnel's own housekeeping inside it: ARP, IPv6 ND/MLD)
    assert eth or len(tcp_recs) == len(recs), [r["layers"] for r in recs]
    assert len(tcp_recs) > 10
    for r in tcp_recs:
        ls = r["layers"]
        assert ls.count("ipv4") + ls.count("ipv6") == 2, ls
        tunnel = layer if layer in ls[1:] else ls[ls.index("udp") + 1]  # (through_tunnel)
        assert ls.index(tunnel, 1) < ls.index("tcp"), ls
        assert ls.count("eth") == (2 if eth else 1), ls
    fields = ["frame.number", "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw",
              "tcp.flags", "tcp.len", "tcp.checksum", "frame.protocols"]
    argv = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=|",
            "-E", "occurrence=l"]
    for f in fields:
        argv += ["-e", f]
    rows = [x.split("|") for x in subprocess.run(argv, capture_output=True, text=True,
                                                 check=True).stdout.splitlines()]
    assert len(rows) == len(recs)
    for r, row in zip(recs, rows, strict=True):
        assert r["frame"] == int(row[0])
        if r not in tcp_recs:
            assert row[1] == "", row  # tshark sees no TCP there either
            through_tunnel(r["layers"], layer, row[-1].split(":"))
            continue
        through_tunnel(r["layers"], layer, row[-1].split(":"))
        t = r["tcp"]
        assert (t["sport"], t["dport"], t["seq"], t["ack"], t["flags_int"], t["len"],
                t["checksum"]) == (int(row[1]), int(row[2]), int(row[3]), int(row[4]),
                                   int(row[5], 16), int(row[6]), int(row[7], 16)), r["frame"]
        assert t["checksum_status"] == "good", r["frame"]
    table = subprocess.run([RAWLAB, "tcp", str(path)], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    conns = [x for x in table[1:] if x.strip()]
    assert len(conns) == 1 and f"{inner[0]}" in conns[0] and "SF" in conns[0], table
    exact = [json.loads(x) for x in subprocess.run(
        [RAWLAB, "tcp", "--json", str(path)], capture_output=True, text=True,
        check=True).stdout.splitlines()]
    closed = [e for e in exact if e.get("type") == "connection"]
    assert len(closed) == 1 and closed[0]["state"] == "SF", closed
    segs = [e for e in exact if e.get("type") == "segment"]
    assert len(segs) == len(tcp_recs)
    # Wireshark's analysis flags, frame by frame: none, unless the veth pair reordered or
    # the stack resent a segment (a loaded machine): then the same ones as tshark's
    names = sorted(ANALYSIS_NAMES)
    argv = ["tshark", "-n", "-r", str(path), "-Y", "tcp", "-T", "fields", "-E", "separator=|",
            "-E", "occurrence=l", "-e", "frame.number"]
    for n in names:
        argv += ["-e", f"tcp.analysis.{n}"]
    flags = {int(x[0]): {n for n, v in zip(names, x[1:], strict=True) if v}
             for x in (y.split("|") for y in subprocess.run(
                 argv, capture_output=True, text=True, check=True).stdout.splitlines())}
    assert all(set(s["analysis"]) == flags[s["frame"]] for s in segs), [
        (s["frame"], s["analysis"], flags[s["frame"]]) for s in segs
        if set(s["analysis"]) != flags[s["frame"]]]
