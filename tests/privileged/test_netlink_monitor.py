"""`rawlab netlink monitor` in namespaces: changes made with pyroute2 and iproute2 are
reported in order with their attributes; attribution, --all-nsid, overflow + re-dump."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from _background import Background
from rawlab.lab.netns import Lab, Netns

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def ip(ns: Netns, *args: str) -> None:
    subprocess.run(["ip", "-n", ns.name, *args], check=True, capture_output=True, text=True)


class Mon(Background):
    """A running `rawlab netlink monitor --json`, started once it says it is ready."""

    def __init__(self, ns: Netns, *args: str) -> None:
        super().__init__([RAWLAB, "netlink", "monitor", "--netns", ns.name, "--json", *args],
                         ready="monitoring")

    def stop(self, settle: float = 0.5) -> list[dict[str, Any]]:  # type: ignore[override]
        lines = super().stop(settle)
        assert self.p.returncode == 0, self.err
        recs = [json.loads(x) for x in lines]
        assert "summary" in recs[-1]
        return recs


def find(recs: list[dict[str, Any]], mtype: str, **attrs: Any) -> int:
    """Index of the first record of that type whose attrs include these values."""
    for i, r in enumerate(recs):
        if r.get("nlmsg_type") == mtype and all(r["attrs"].get(k) == v
                                                 for k, v in attrs.items()):
            return i
    raise AssertionError(f"no {mtype} {attrs} in {[r.get('nlmsg_type') for r in recs]}")


def test_iproute2_changes_in_order_with_attributes(lab: Lab) -> None:
    ns = lab.netns("mon")
    mon = Mon(ns)
    ip(ns, "link", "add", "b0", "type", "veth", "peer", "name", "b1")
    ip(ns, "addr", "add", "10.51.0.1/24", "dev", "b0")
    ip(ns, "link", "set", "b0", "up")
    ip(ns, "link", "set", "b1", "up")
    ip(ns, "route", "add", "10.61.0.0/24", "via", "10.51.0.2", "metric", "7")
    ip(ns, "neigh", "add", "10.51.0.9", "lladdr", "02:00:00:00:51:09", "dev", "b0")
    ip(ns, "rule", "add", "from", "10.70.0.0/16", "table", "100", "prio", "1000")
    ip(ns, "route", "del", "10.61.0.0/24")
    ip(ns, "link", "del", "b0")
    recs = mon.stop(settle=1)
    msgs = [r for r in recs if r.get("event") == "message"]
    order = [
        find(msgs, "RTM_NEWLINK", IFLA_IFNAME="b0"),
        find(msgs, "RTM_NEWADDR", IFA_LOCAL="10.51.0.1", IFA_LABEL="b0"),
        find(msgs, "RTM_NEWROUTE", RTA_DST="10.61.0.0", RTA_GATEWAY="10.51.0.2",
             RTA_PRIORITY=7),
        find(msgs, "RTM_NEWNEIGH", NDA_DST="10.51.0.9", NDA_LLADDR="02:00:00:00:51:09"),
        find(msgs, "RTM_NEWRULE", FRA_SRC="10.70.0.0", FRA_TABLE=100, FRA_PRIORITY=1000),
        find(msgs, "RTM_DELROUTE", RTA_DST="10.61.0.0"),
        find(msgs, "RTM_DELLINK", IFLA_IFNAME="b0"),
    ]
    assert order == sorted(order)
    b0 = msgs[order[0]]["index"]
    assert msgs[order[2]]["attrs"]["RTA_OIF"] == b0 and msgs[order[2]]["dst_len"] == 24
    assert msgs[order[1]]["prefixlen"] == 24 and msgs[order[1]]["family"] == 2
    assert msgs[order[3]]["state"] == 0x80  # NUD_PERMANENT
    assert msgs[order[0]]["attrs"]["IFLA_LINKINFO"]["IFLA_INFO_KIND"] == "veth"
    assert [r["n"] for r in msgs] == list(range(1, len(msgs) + 1))
    assert all(r["nlmsg_pid"] > 0 for r in (msgs[i] for i in order[1:6]))  # from ip's socket
    summary = recs[-1]["summary"]
    assert summary["overflows"] == 0 and summary["messages"] == len(msgs)


def test_pyroute2_changes_attributed_to_this_process(lab: Lab) -> None:
    from pyroute2 import IPRoute

    ns = lab.netns("pyr")
    mon = Mon(ns, "--groups", "link,addr,route,neigh")
    with ns.entered():
        ipr = IPRoute()
    try:
        ipr.link("add", ifname="p0", kind="veth", peer="p1")
        idx = ipr.link_lookup(ifname="p0")[0]
        ipr.addr("add", index=idx, address="10.52.0.1", prefixlen=24)
        ipr.link("set", index=idx, state="up")
        ipr.route("add", dst="10.62.0.0/24", gateway="10.52.0.2")
        ipr.neigh("add", dst="10.52.0.9", lladdr="02:00:00:00:52:09", ifindex=idx,
                  state=0x80)
        recs = mon.stop()
    finally:
        ipr.close()
    msgs = [r for r in recs if r.get("event") == "message"]
    order = [
        find(msgs, "RTM_NEWLINK", IFLA_IFNAME="p0"),
        find(msgs, "RTM_NEWADDR", IFA_LOCAL="10.52.0.1"),
        find(msgs, "RTM_NEWROUTE", RTA_DST="10.62.0.0", RTA_GATEWAY="10.52.0.2", RTA_OIF=idx),
        find(msgs, "RTM_NEWNEIGH", NDA_DST="10.52.0.9", NDA_LLADDR="02:00:00:00:52:09"),
    ]
    assert order == sorted(order)
    for i in order[1:]:
        proc = msgs[i]["process"]
        assert proc is not None and proc["pid"] == os.getpid(), msgs[i]
        assert proc["how"] == "socket"


def test_all_nsid_tags_events_of_other_namespaces(lab: Lab) -> None:
    a, b = lab.netns("a"), lab.netns("b")
    ip(a, "netns", "set", b.name, "42")  # b is nsid 42 as seen from a
    mon = Mon(a, "--groups", "link", "--all-nsid")
    ip(b, "link", "add", "c0", "type", "veth", "peer", "name", "c1")
    ip(a, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
    msgs = [r for r in mon.stop() if r.get("event") == "message"]
    c0 = msgs[find(msgs, "RTM_NEWLINK", IFLA_IFNAME="c0")]
    d0 = msgs[find(msgs, "RTM_NEWLINK", IFLA_IFNAME="d0")]
    assert c0["nsid"] == 42 and d0["nsid"] is None
    assert c0["group"] == 1  # RTNLGRP_LINK, from NETLINK_PKTINFO


def test_overflow_is_counted_and_redump_reports_what_was_missed(lab: Lab, tmp_path: Path
                                                                ) -> None:
    ns = lab.netns("ovf")
    ip(ns, "link", "add", "o0", "type", "veth", "peer", "name", "o1")
    ip(ns, "addr", "add", "10.80.0.1/16", "dev", "o0")
    ip(ns, "link", "set", "o0", "up")
    ip(ns, "link", "set", "o1", "up")
    n = 3000
    batch = tmp_path / "routes"
    batch.write_text("".join(f"route add 172.20.{i >> 8}.{i & 255}/32 via 10.80.0.2\n"
                             for i in range(n)))
    mon = Mon(ns, "--groups", "route", "--rcvbuf-kb", "4")
    mon.p.send_signal(signal.SIGSTOP)  # a reader that cannot keep up: the kernel must drop
    try:
        subprocess.run(["ip", "-n", ns.name, "-batch", str(batch)], check=True)
    finally:
        mon.p.send_signal(signal.SIGCONT)
    recs = mon.stop(settle=3)
    overflows = [r for r in recs if r.get("event") == "overflow"]
    assert overflows and overflows[0]["resync"] == ["route"]
    seen = {r["attrs"]["RTA_DST"] for r in recs if r.get("event") == "message"
            and r["nlmsg_type"] == "RTM_NEWROUTE" and not r.get("resynced")}
    added = {r["attrs"]["RTA_DST"] for r in recs if r.get("event") == "resync"
             and r["change"] == "added"}
    want = {f"172.20.{i >> 8}.{i & 255}" for i in range(n)}
    assert want <= seen | added  # nothing lost: each route was either an event or re-dumped
    assert added and len(seen) < n
    summary = recs[-1]["summary"]
    assert summary["overflows"] >= 1 and summary["resync"]["added"] >= len(added & want)


def test_a_burst_of_route_adds_arrives_whole_with_its_sender_named(lab: Lab, tmp_path: Path
                                                                   ) -> None:
    """bench/netlink's burst, smaller: every event of a 20,000-route `ip -batch`, in order,
    each named after the ip process that made it (looked up as it arrived)."""
    ns = lab.netns("burst")
    ip(ns, "link", "add", "o0", "type", "veth", "peer", "name", "o1")
    ip(ns, "addr", "add", "10.80.0.1/16", "dev", "o0")
    ip(ns, "link", "set", "o0", "up")
    ip(ns, "link", "set", "o1", "up")
    n = 20000
    batch = tmp_path / "routes"
    batch.write_text("".join(f"route add 172.{16 + (i >> 16)}.{i >> 8 & 255}.{i & 255}/32 "
                             "via 10.80.0.2\n" for i in range(n)))
    mon = Mon(ns, "--groups", "route")
    subprocess.run(["ip", "-n", ns.name, "-batch", str(batch)], check=True)
    recs = mon.stop(settle=3)
    routes = [r for r in recs if r.get("event") == "message"
              and r["nlmsg_type"] == "RTM_NEWROUTE" and r["attrs"]["RTA_DST"].startswith("172.")]
    assert len(routes) == n and recs[-1]["summary"]["overflows"] == 0
    assert [r["attrs"]["RTA_DST"] for r in routes[:3]] == ["172.16.0.0", "172.16.0.1",
                                                           "172.16.0.2"]
    who = {(r["process"]["comm"], r["process"]["pid"]) for r in routes}
    assert len(who) == 1 and next(iter(who))[0] == "ip"
