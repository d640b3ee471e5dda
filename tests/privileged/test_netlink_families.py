"""`rawlab netlink monitor --conntrack / --nftables / --genl` in namespaces, side by side
with `conntrack -E`, `nft monitor` and `nft --debug=netlink`; two monitors attribute the
same changes alike."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from _background import Background
from rawlab.lab.netns import Lab, Netns

RAWLAB = str(Path(sys.executable).with_name("rawlab"))
SUFFIX = re.compile(r"  \(pid \d+: [^)]*\)$")

CONNECT = """
import socket, sys
port = int(sys.argv[1])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen()
c = socket.create_connection(("127.0.0.1", port)); a, _ = s.accept()
c.sendall(b"x" * 100); a.recv(1000); a.sendall(b"y" * 50); c.recv(1000)
c.close(); a.close(); s.close()
"""


def sh(ns: Netns, *args: str, check: bool = True) -> str:
    return subprocess.run(["ip", "netns", "exec", ns.name, *args], check=check,
                          capture_output=True, text=True, timeout=60).stdout


Proc = Background


def _nf_listeners(ns: Netns) -> int:
    """Netfilter netlink sockets of ``ns`` that have joined a multicast group
    (/proc/net/netlink: sk Eth Pid Groups ...; Eth 12 is NETLINK_NETFILTER)."""
    rows = [x.split() for x in sh(ns, "cat", "/proc/net/netlink").splitlines()[1:]]
    return sum(1 for r in rows if len(r) > 3 and r[1] == "12" and int(r[3], 16))


def peer_monitor(ns: Netns, *argv: str) -> Proc:
    """A peer monitor (conntrack -E, nft monitor) in ``ns``, once it has joined its groups."""
    before = _nf_listeners(ns)
    p = Proc(["ip", "netns", "exec", ns.name, *argv], settle=0)
    end = time.monotonic() + 30
    while _nf_listeners(ns) <= before:
        assert p.p.poll() is None and time.monotonic() < end, f"{argv} did not start"
        time.sleep(0.05)
    return p


def monitor(ns: Netns, *args: str) -> Proc:
    return Proc([RAWLAB, "netlink", "monitor", "--netns", ns.name, *args], ready="monitoring")


def nft_table(ns: Netns) -> None:
    sh(ns, "nft", "add", "table", "ip", "t")
    sh(ns, "nft", "add", "chain", "ip", "t", "c",
       "{ type filter hook output priority 0; policy accept; }")


@pytest.mark.skipif(shutil.which("conntrack") is None,
                    reason="conntrack (conntrack-tools) not installed: ./setup.sh --test")
def test_conntrack_events_as_conntrack_E_prints_them(lab: Lab) -> None:
    ns = lab.netns("ct")
    sh(ns, "ip", "link", "set", "lo", "up")
    sh(ns, "sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1")
    nft_table(ns)
    sh(ns, "nft", "add", "rule", "ip", "t", "c", "tcp", "dport", "5555", "ct", "mark", "set",
       "42", "accept")
    sh(ns, "nft", "add", "chain", "ip", "t", "raw",  # zones are chosen before tracking
       "{ type filter hook output priority raw; }")
    sh(ns, "nft", "add", "rule", "ip", "t", "raw", "tcp", "dport", "5555", "ct", "zone", "set",
       "3")
    sh(ns, "nft", "add", "rule", "ip", "t", "raw", "tcp", "sport", "5555", "ct", "zone", "set",
       "3")
    theirs = peer_monitor(ns, "conntrack", "-E")
    text = monitor(ns, "--conntrack")
    js = monitor(ns, "--conntrack", "--json")
    sh(ns, sys.executable, "-c", CONNECT, "5555")
    sh(ns, "conntrack", "-D", "-p", "tcp", "--dport", "5555", "-w", "3")
    mine = [SUFFIX.sub("", x) for x in text.stop()]
    recs = [json.loads(x) for x in js.stop()]
    peer = [x for x in theirs.stop() if "dport=5555" in x]
    # conntrack names the process that deleted the entry if it still runs; so do we
    name = re.compile(r" progname=\S+$")
    assert [name.sub("", x) for x in mine if "dport=5555" in x] == [name.sub("", x)
                                                                    for x in peer]
    assert all(x.endswith(" progname=conntrack") for x in mine if "[USERSPACE]" in x
               and "progname" in x)
    assert len(peer) >= 4 and peer[0].startswith("    [NEW] tcp      6 120 SYN_SENT ")
    assert peer[-1].startswith("[DESTROY] tcp      6 ")
    cts = [r["conntrack"] for r in recs if "conntrack" in r]
    assert [c["event"] for c in cts][:2] == ["new", "update"] and cts[-1]["event"] == "destroy"
    first, last = cts[0], cts[-1]
    assert first["proto"] == "tcp" and first["state"] == "SYN_SENT" and first["mark"] == 42
    assert all(c["zone"] == 3 for c in cts) and " zone=3" in peer[0]
    assert first["orig"]["dport"] == 5555 and first["reply"]["sport"] == 5555
    assert first["orig"]["src"] == "127.0.0.1" and "SEEN_REPLY" not in first["status_names"]
    assert any(c["state"] == "ESTABLISHED" and "ASSURED" in c["status_names"] for c in cts)
    # accounting on: the destroy event carries both directions' counters, 100 + 50 bytes
    # of payload among them
    assert last["orig"]["packets"] >= 4 and last["orig"]["bytes"] >= 100 + 4 * 52
    assert last["reply"]["packets"] >= 3 and last["reply"]["bytes"] >= 50 + 3 * 52
    assert recs[-1]["summary"]["messages"] == len(recs) - 1


def test_nftables_changes_as_nft_monitor_and_debug_netlink_print_them(lab: Lab) -> None:
    ns = lab.netns("nft")
    theirs = peer_monitor(ns, "nft", "monitor")
    text = monitor(ns, "--nftables")
    js = monitor(ns, "--nftables", "--json")
    nft_table(ns)
    debug = sh(ns, "nft", "--debug=netlink", "add", "rule", "ip", "t", "c", "tcp", "dport",
               "22", "counter", "accept")
    sh(ns, "nft", "add", "set", "ip", "t", "s", "{ type ipv4_addr; }")
    sh(ns, "nft", "add", "element", "ip", "t", "s", "{ 10.0.0.1 }")
    sh(ns, "nft", "delete", "table", "ip", "t")
    mine = text.stop()
    recs = [json.loads(x) for x in js.stop()]
    peer = theirs.stop()
    # nft monitor's lines for what has no expressions are ours, word for word
    ours = [SUFFIX.sub("", x) for x in mine]
    same = [x.rstrip() for x in peer if not x.startswith(("add rule", "add element"))]
    assert [x for x in ours if not x.startswith(("add rule", "add element"))] == same
    assert "add chain ip t c { type filter hook output priority filter; policy accept; }" \
        in same
    assert "add set ip t s { type ipv4_addr; }" in same
    # the rule's expressions are the ones nft sent, as nft --debug=netlink prints them
    exprs = [x.strip() for x in debug.splitlines() if x.strip().startswith("[")]
    (rule,) = [r["nftables"] for r in recs if r.get("nftables", {}).get("object") == "rule"
               and r["nftables"]["op"] == "add"]
    assert [e["text"] for e in rule["expressions"]] == exprs
    assert [e["expr"] for e in rule["expressions"]] == ["meta", "cmp", "payload", "cmp",
                                                        "counter", "immediate"]
    assert (rule["family"], rule["table"], rule["chain"]) == ("ip", "t", "c")
    assert f"delete rule ip t c handle {rule['handle']}" in same  # nft names it so
    (elem,) = [r["nftables"] for r in recs if r.get("nftables", {}).get("object") == "element"]
    assert elem["name"] == "s" and elem["elements"][0]["key"] == "0a000001"
    gens = [r for r in recs if r.get("nlmsg_type") == "NFT_MSG_NEWGEN"]
    assert gens and all(g["nftables"]["comm"] == "nft" for g in gens)
    # every change is named after the nft process of its batch, even once it has exited
    changes = [r for r in recs if "nftables" in r]
    assert all(r["process"]["comm"] == "nft" and r["process"]["pid"] == r["nlmsg_pid"]
               for r in changes), [r["process"] for r in changes]


def test_genl_families_and_unknown_ones(lab: Lab) -> None:
    ns = lab.netns("genl")
    p = subprocess.run([RAWLAB, "netlink", "monitor", "--netns", ns.name, "--genl", "nosuch",
                        "--duration", "1"], capture_output=True, text=True, timeout=30,
                       check=False)
    assert p.returncode == 4 and "no generic netlink family 'nosuch'" in p.stderr
    assert "nlctrl" in p.stderr and p.stderr.count("\n") == 1
    p = subprocess.run([RAWLAB, "netlink", "monitor", "--netns", ns.name, "--genl",
                        "nlctrl:nosuch", "--duration", "1"], capture_output=True, text=True,
                       timeout=30, check=False)
    assert p.returncode == 2 and "notify" in p.stderr  # the groups it has
    # nlctrl's notify group: a family appears when a module registers one; here nothing
    # does, so the monitor just runs and ends cleanly with its summary
    p = subprocess.run([RAWLAB, "netlink", "monitor", "--netns", ns.name, "--genl", "nlctrl",
                        "--json", "--duration", "1"], capture_output=True, text=True,
                       timeout=30, check=False)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.splitlines()[-1])["summary"]["groups"] == ["nlctrl"]


def test_two_monitors_attribute_every_change_alike_and_say_why_when_they_cannot(lab: Lab
                                                                                ) -> None:
    ns = lab.netns("attr")
    sh(ns, "ip", "link", "add", "a0", "type", "veth", "peer", "name", "a1")
    one, two = monitor(ns, "--json"), monitor(ns, "--json", "--groups", "link,addr,route")
    for i in range(8):
        sh(ns, "ip", "addr", "add", f"10.9.{i}.1/24", "dev", "a0")
    sh(ns, "ip", "link", "set", "a0", "up")  # the kernel adds routes of its own (pid 0)
    sh(ns, "ip", "link", "set", "a1", "up")
    time.sleep(1)
    a = [json.loads(x) for x in one.stop()]
    b = [json.loads(x) for x in two.stop()]

    def who(recs: list[dict[str, Any]]) -> dict[tuple[Any, ...], Any]:
        return {(r["nlmsg_type"], json.dumps({k: v for k, v in r["attrs"].items()
                                              if "CACHEINFO" not in k}, sort_keys=True)):
                r["process"] for r in recs if r.get("event") == "message"
                and r["nlmsg_type"] in ("RTM_NEWADDR", "RTM_NEWROUTE")}

    wa, wb = who(a), who(b)
    common = set(wa) & set(wb)
    assert len(common) >= 16

    def ident(p: dict[str, Any]) -> tuple[Any, ...]:  # "how" says how it was found
        return (p["pid"], p["comm"]) if p["pid"] is not None else (p["how"], p["why"])

    assert all(ident(wa[k]) == ident(wb[k]) for k in common), [
        (k, wa[k], wb[k]) for k in common if ident(wa[k]) != ident(wb[k])]
    for k in common:  # every sender named, or the reason it is not
        p = wa[k]
        assert p is not None and (p["comm"] == "ip" or p["how"] in ("kernel", "gone"))
        if p["how"] in ("kernel", "gone"):
            assert p["why"] and p["pid"] is None
    assert any(p["how"] == "kernel" for p in wa.values())  # the kernel's own routes
    addrs = [p for (t, a), p in wa.items() if t == "RTM_NEWADDR" and "10.9." in a]
    assert len(addrs) == 8 and all(p["comm"] == "ip" for p in addrs)  # even once exited
