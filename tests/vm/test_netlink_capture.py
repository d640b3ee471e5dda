"""vm tier: `rawlab netlink capture` through a real nlmon device (Debian's kernel has it):
a scripted change set, read back by `rawlab netlink decode` and by tshark (netlink-route).

Runs inside the one virtme-ng guest (tests/conftest.py); /work is read-only there,
so files go under /tmp.
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rawlab.lab.netns import Lab

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def ip(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True, text=True)


def start_capture(out: Path, ns: str) -> subprocess.Popen[str]:
    p = subprocess.Popen([RAWLAB, "netlink", "capture", "-w", str(out), "--netns", ns],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r, _, _ = select.select([p.stderr], [], [], 1)
        if r:
            line = p.stderr.readline()
            if "capturing netlink" in line:
                assert "not AUDIT, KOBJECT_UEVENT (uevent), CONNECTOR" in line
                return p
            if not line:
                break
    p.kill()
    raise AssertionError(f"capture did not start: {p.communicate()}")


def test_nlmon_capture_of_a_change_set(lab: Lab) -> None:
    ns = lab.netns("nlmon").name
    out = Path(tempfile.mkdtemp(prefix="rawlab-nl-")) / "nl.pcapng"
    p = start_capture(out, ns)
    ip(ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    ip(ns, "addr", "add", "10.90.0.1/24", "dev", "v0")
    ip(ns, "link", "set", "v0", "up")
    ip(ns, "route", "add", "10.91.0.0/24", "via", "10.90.0.2")
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "netlink messages captured" in err
    links = subprocess.run(["ip", "-n", ns, "-o", "link"], capture_output=True, text=True,
                           check=True).stdout
    assert "rlnlmon" not in links  # the nlmon link went away with the capture

    d = subprocess.run([RAWLAB, "netlink", "decode", str(out), "--json"], capture_output=True,
                       text=True, check=True, timeout=120)
    recs: list[dict[str, Any]] = [json.loads(x) for x in d.stdout.splitlines()]

    def req(mtype: str, **attrs: Any) -> dict[str, Any]:
        for r in recs:
            if r.get("nlmsg_type") == mtype and "REQUEST" in r["nlmsg_flags_names"] and all(
                    r["attrs"].get(k) == v for k, v in attrs.items()):
                return r
        raise AssertionError(f"no {mtype} request {attrs}: "
                             f"{[(r.get('nlmsg_type'), r.get('direction')) for r in recs]}")

    a = req("RTM_NEWLINK", IFLA_IFNAME="v0")
    b = req("RTM_NEWADDR", IFA_LOCAL="10.90.0.1")
    c = req("RTM_NEWROUTE", RTA_DST="10.91.0.0", RTA_GATEWAY="10.90.0.2")
    assert a["frame"] < b["frame"] < c["frame"]
    assert {r["pkttype"] for r in recs} <= {4, 6, 7}, {r["pkttype"] for r in recs}
    assert {r["direction"] for r in (a, b, c)} == {"to_kernel"}
    assert all(r["protocol"] == 0 for r in (a, b, c))
    acks = [r for r in recs if r["nlmsg_type"] == "NLMSG_ERROR" and r["error"] == 0]
    assert acks and {r["direction"] for r in acks} == {"to_user"}

    t = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "frame.number",
                        "-e", "frame.protocols", "-e", "frame.packet_flags_direction"],
                       capture_output=True, text=True, check=True, timeout=120).stdout
    rows = {int(x.split("\t")[0]): x.split("\t")[1:] for x in t.splitlines() if x}
    assert "netlink-route" in rows[a["frame"]][0], rows[a["frame"]]
    assert rows[a["frame"]][1] in ("2", "0x00000002", "0x2")  # outbound: to the kernel
    v = subprocess.run(["tshark", "-r", str(out), "-V", "-Y", f"frame.number == {c['frame']}"],
                       capture_output=True, text=True, check=True, timeout=120).stdout
    assert "Linux rtnetlink (route netlink) protocol" in v and "Add network route" in v
    assert "Route destination address" in v and "0a5b0000" in v  # 10.91.0.0, shown as data
