"""vm tier: `rawlab netlink trace -- CMD` through a real nlmon device (Debian's kernel has
it): ip's requests, ACKs and extended-ACK errors, a shell's children, nft's batch, ethtool's
generic netlink conversation, decoded; the nlmon link always removed; -w read back.

Runs inside the one virtme-ng guest (tests/conftest.py); /work is read-only there,
so files go under /tmp.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from rawlab.lab.netns import Lab

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def trace(ns: str, *cmd: str, extra: tuple[str, ...] = ()) -> tuple[int, list[dict[str, Any]],
                                                                    str]:
    p = subprocess.run([RAWLAB, "netlink", "trace", "--netns", ns, "--json", *extra, "--", *cmd],
                       capture_output=True, text=True, timeout=120, check=False)
    recs = [json.loads(x) for x in p.stdout.splitlines()]
    assert recs and "summary" in recs[-1], (p.returncode, p.stderr)
    links = subprocess.run(["ip", "-n", ns, "-o", "link"], capture_output=True, text=True,
                           check=True).stdout
    assert "rlnlmon" not in links  # the nlmon link went away with the trace
    return p.returncode, recs, p.stderr


def test_ip_link_add_request_and_ack(lab: Lab) -> None:
    ns = lab.netns("tr1").name
    code, recs, _err = trace(ns, "ip", "link", "add", "v0", "type", "veth", "peer", "name",
                             "v1")
    assert code == 0
    msgs = recs[:-1]
    # ip sends an empty RTM_NEWLINK first (a probe), then the one that makes the link
    req = [r for r in msgs if r["direction"] == "to_kernel" and r["nlmsg_type"] == "RTM_NEWLINK"
           and "IFLA_IFNAME" in r["attrs"]]
    assert len(req) == 1 and req[0]["attrs"]["IFLA_IFNAME"] == "v0"
    assert req[0]["attrs"]["IFLA_LINKINFO"]["IFLA_INFO_KIND"] == "veth"
    assert {"REQUEST", "ACK", "CREATE", "EXCL"} <= set(req[0]["nlmsg_flags_names"])
    acks = [r for r in msgs if r["nlmsg_type"] == "NLMSG_ERROR" and r["error"] == 0]
    assert acks and acks[0]["direction"] == "to_user"
    assert acks[0]["nlmsg_seq"] == req[0]["nlmsg_seq"] and acks[0]["t_ns"] >= req[0]["t_ns"]
    assert {r["process"]["comm"] for r in msgs} == {"ip"}  # nothing of other processes
    assert recs[-1]["summary"]["exit"] == 0 and recs[-1]["summary"]["requests"] >= 1


def test_an_error_with_the_kernels_extended_ack_text(lab: Lab) -> None:
    ns = lab.netns("tr2").name
    subprocess.run(["ip", "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                   check=True)
    subprocess.run(["ip", "-n", ns, "addr", "add", "10.90.0.1/24", "dev", "v0"], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", "v0", "up"], check=True)
    code, recs, _err = trace(ns, "ip", "route", "add", "10.91.0.0/24", "via", "10.99.0.9")
    assert code == 2  # ip's own exit status
    (err,) = [r for r in recs[:-1] if r.get("nlmsg_type") == "NLMSG_ERROR"]
    assert err["errno"] == "ENETUNREACH" and err["extack"] == "Nexthop has invalid gateway"
    (req,) = [r for r in recs[:-1] if r["nlmsg_type"] == "RTM_NEWROUTE"]
    assert req["attrs"]["RTA_GATEWAY"] == "10.99.0.9" and req["nlmsg_seq"] == err["nlmsg_seq"]
    assert recs[-1]["summary"]["errors"] == 1
    text = subprocess.run([RAWLAB, "netlink", "trace", "--netns", ns, "--", "ip", "route", "add",
                           "10.91.0.0/24", "via", "10.99.0.9"], capture_output=True, text=True,
                          timeout=120, check=False)
    line = [x for x in text.stdout.splitlines() if "NLMSG_ERROR" in x]
    assert line and "error ENETUNREACH: Nexthop has invalid gateway" in line[0]
    assert " ms  ip[" in line[0] and " ← route " in line[0]


def test_children_of_a_shell_and_a_capture_file(lab: Lab) -> None:
    ns = lab.netns("tr3").name
    out = Path(tempfile.mkdtemp(prefix="rawlab-tr-")) / "conv.pcapng"
    code, recs, _err = trace(ns, "sh", "-c", "ip link add a0 type veth peer name a1 && "
                             "ip addr add 10.7.0.1/24 dev a0 && ip link set a0 up",
                             extra=("-w", str(out)))
    assert code == 0
    msgs = recs[:-1]
    # ip's empty RTM_NEWLINK probes (index 0, no attributes) left aside
    kinds = [r["nlmsg_type"] for r in msgs if r["direction"] == "to_kernel"
             and r["nlmsg_type"] in ("RTM_NEWLINK", "RTM_NEWADDR")
             and (r["attrs"] or r.get("index"))]
    assert kinds == ["RTM_NEWLINK", "RTM_NEWADDR", "RTM_NEWLINK"], kinds
    pids = {r["process"]["pid"] for r in msgs if r["direction"] == "to_kernel"}
    assert len(pids) == 3 and {r["process"]["comm"] for r in msgs} == {"ip"}
    d = subprocess.run([RAWLAB, "netlink", "decode", str(out), "--json"], capture_output=True,
                       text=True, check=True, timeout=120)
    back = [json.loads(x) for x in d.stdout.splitlines()]
    assert [(r["nlmsg_type"], r["direction"]) for r in back] == [
        (r["nlmsg_type"], r["direction"]) for r in msgs]


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft not installed")
def test_nft_batch(lab: Lab) -> None:
    ns = lab.netns("tr4").name
    code, recs, _err = trace(ns, "nft", "add", "table", "ip", "t")
    assert code == 0
    msgs = recs[:-1]
    (new,) = [r for r in msgs if r["nlmsg_type"] == "NFT_MSG_NEWTABLE"
              and r["direction"] == "to_kernel"]
    assert new["attrs"]["NFTA_TABLE_NAME"] == "t" and new["nftables"]["op"] == "add"
    assert {r["process"]["comm"] for r in msgs} == {"nft"}
    assert any(r["direction"] == "to_user" for r in msgs)


@pytest.mark.skipif(shutil.which("ethtool") is None, reason="ethtool not installed")
def test_generic_netlink_family_of_the_guest(lab: Lab) -> None:
    ns = lab.netns("tr5").name
    code, recs, _err = trace(ns, "ethtool", "lo")
    msgs = recs[:-1]
    fams = {r["nlmsg_type"] for r in msgs}
    assert "nlctrl" in fams and "ethtool" in fams, fams  # the family's id, learnt and named
    ctrl = [r for r in msgs if r["nlmsg_type"] == "nlctrl" and r["direction"] == "to_kernel"]
    assert ctrl and ctrl[0]["cmd_name"] == "CTRL_CMD_GETFAMILY"
    eth = [r for r in msgs if r["nlmsg_type"] == "ethtool"]
    assert any(r["cmd_name"].startswith("ETHTOOL_MSG_") for r in eth)
    replies = [r for r in eth if r["direction"] == "to_user" and r["nlmsg_type"] == "ethtool"]
    assert replies and all(r["cmd_name"].endswith(("_REPLY", "_NTF")) for r in replies)
    assert code in (0, 75, 1)  # lo has no link settings to report: ethtool may say so
