"""Netlink benchmark at Internet scale, inside namespaces it creates (root):

1. burst: N route adds (default 1,000,000: a full IPv4 table) via `ip -batch` while
   monitoring. Events received by `rawlab netlink monitor --json`, `ip monitor route`,
   and a pyroute2 `IPRoute().get()` loop.
2. dumps, full decode to JSON, each tool end to end (process start included), best of
   several runs taken in turns, with its peak memory (max RSS): rawlab `netlink dump
   KIND --json` against `ip -j KIND` for
     - the IPv4 table the burst installed (1M routes),
     - 200,000 IPv6 routes,
     - 100,000 links (50,000 veth pairs), 100,000 addresses, 100,000 neighbours;
   plus rawlab in-process (dump + NDJSON text; dump + decode into objects) and
   pyroute2 `IPRoute().get_routes()` for the IPv4 table (`--pyroute2-dump`: at 1M it
   takes minutes).

    sudo .venv/bin/python bench/netlink/run.py [--burst 1000000] [--routes6 200000]
        [--objects 100000] [--runs 5] [--pyroute2-dump] [--quick]

``--quick`` runs everything at 20,000. Setting the tables up takes a few minutes
(the kernel inserts ~45k IPv4 routes/s, ~45k IPv6 routes/s, ~2k veth pairs/s).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rawlab.lab.netns import Lab

RAWLAB = str(Path(sys.executable).with_name("rawlab"))

PYROUTE2_READER = r"""
import json, sys, time
from rawlab.lab.netns import entered
from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import RTMGRP_IPV4_ROUTE
with entered(sys.argv[1]):
    ipr = IPRoute()
ipr.bind(groups=RTMGRP_IPV4_ROUTE)
want = int(sys.argv[2])
n, err = 0, None
print("ready", file=sys.stderr, flush=True)
try:
    while n < want:
        for msg in ipr.get():
            if msg.get("event") == "RTM_NEWROUTE" or msg["header"]["type"] == 24:
                n += 1
except BaseException as exc:
    err = f"{type(exc).__name__}: {exc}"
print(json.dumps({"received": n, "error": err}), flush=True)
"""


def wait_line(p: subprocess.Popen[str], word: str, timeout: float = 60) -> None:
    assert p.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([p.stderr], [], [], 1)
        if r:
            line = p.stderr.readline()
            if word in line:
                return
            if not line:
                break
    raise RuntimeError(f"{p.args[:3]} did not start")


def v4(i: int) -> str:
    return f"{16 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"


def ip_batch(ns: str, lines: list[str], tmp: Path) -> float:
    path = tmp / f"batch.{ns}"
    path.write_text("".join(line + "\n" for line in lines))
    t0 = time.perf_counter()
    subprocess.run(["ip", "-n", ns, "-batch", str(path)], check=True)
    return time.perf_counter() - t0


def burst(ns: str, tmp: Path, n: int) -> dict[str, int]:
    rl_out = tmp / "rawlab.ndjson"
    ip_out = tmp / "ipmon.txt"
    with open(rl_out, "w") as f1, open(ip_out, "w") as f2:
        rl = subprocess.Popen([RAWLAB, "netlink", "monitor", "--netns", ns, "--groups", "route",
                               "--json"], stdout=f1, stderr=subprocess.PIPE, text=True)
        wait_line(rl, "monitoring")
        ipm = subprocess.Popen(["ip", "-n", ns, "monitor", "route"], stdout=f2)
        pyr = subprocess.Popen([sys.executable, "-c", PYROUTE2_READER, ns, str(n)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_line(pyr, "ready")
        time.sleep(1.0)
        t_batch = ip_batch(ns, [f"route add {v4(i)}.0/24 via 10.80.0.2" for i in range(n)], tmp)
        time.sleep(3.0 + n / 100_000)  # the monitors drain what they queued
        for p in (rl, ipm):
            p.send_signal(signal.SIGTERM)
        rl.communicate(timeout=600)
        ipm.wait(timeout=30)
        try:
            pout, _ = pyr.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            pyr.kill()
            pout, _ = pyr.communicate()
    rl_n = rl_resync = 0
    summary: dict[str, object] = {}
    with open(rl_out) as f:
        for x in f:
            r = json.loads(x)
            if r.get("event") == "message" and r["nlmsg_type"] == "RTM_NEWROUTE" \
                    and r["dst_len"] == 24 and r["attrs"].get("RTA_GATEWAY") == "10.80.0.2":
                rl_n += 1
            elif r.get("event") == "resync" and r["change"] == "added":
                rl_resync += 1
            elif "summary" in r:
                summary = r["summary"]
    with open(ip_out) as f:
        ip_n = sum(1 for line in f if "via 10.80.0.2" in line)
    pres = json.loads(pout.strip().splitlines()[-1]) if pout.strip() else {"received": 0,
                                                                            "error": "no output"}
    print(f"\n1. burst: {n:,} route adds via `ip -batch` in {t_batch:.1f} s "
          f"({n / t_batch:,.0f} routes/s)")
    print(f"  {'monitor':<34}{'received':>12}  note")
    print(f"  {'rawlab netlink monitor --json':<34}{rl_n:>12,}  "
          f"overflows {summary.get('overflows')}, re-dump added {rl_resync}")
    print(f"  {'ip monitor route':<34}{ip_n:>12,}  {ip_n / n:.1%}")
    print(f"  {'pyroute2 IPRoute().get() loop':<34}{pres['received']:>12,}  "
          f"{pres['received'] / n:.1%} {pres['error'] or ''}")
    return {"rawlab": rl_n, "ip": ip_n, "pyroute2": pres["received"]}


def run_rss(cmd: list[str]) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one process, its output thrown away. GNU time reads
    the RSS (a child forked from this interpreter would count its pages before exec)."""
    with tempfile.NamedTemporaryFile("r") as stats, open(os.devnull, "wb") as devnull:
        t0 = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-o", stats.name, "-f", "%M", *cmd], stdout=devnull,
                       check=True)
        dt = time.perf_counter() - t0
        return dt, int(stats.read().split()[-1])


def race(cmds: dict[str, list[str]], runs: int) -> dict[str, tuple[float, int]]:
    """Best time and peak RSS of each command, the commands taking turns (the machine's
    other load hits every tool alike)."""
    times: dict[str, list[float]] = {name: [] for name in cmds}
    rss: dict[str, int] = dict.fromkeys(cmds, 0)
    for _ in range(runs):
        for name, cmd in cmds.items():
            t, r = run_rss(cmd)
            times[name].append(t)
            rss[name] = max(rss[name], r)
    return {name: (min(times[name]), rss[name]) for name in cmds}


def best(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def in_process(ns: str, n: int, runs: int, pyroute2: bool) -> None:
    from rawlab.analysis.netlink import dump_messages
    from rawlab.lab.netns import entered
    from rawlab.present.netlink import encode
    from rawlab.present.netlink_shapes import ShapeRenderer
    from rawlab.sockets.netlink import DumpSocket, dump_buffers

    with entered(ns):
        sock = DumpSocket()
    counts: list[int] = []

    def ndjson() -> None:
        shapes = ShapeRenderer(encode)
        bufs = dump_buffers(sock, "routes", family=2, table=254, read_ahead=True)
        counts.append(sum(t.count(b"\n") for t in shapes.render_stream(bufs)))

    def objects() -> None:
        gc.disable()
        try:
            counts.append(sum(1 for _ in dump_messages(sock, "routes", family=2, table=254)))
        finally:
            gc.enable()

    objects()  # warm: the first use reads the attribute maps once
    t_obj, t_nd = best(objects, runs), best(ndjson, runs)
    t_py = None
    if pyroute2:
        from pyroute2 import IPRoute

        with entered(ns):
            ipr = IPRoute()
        t_py = best(lambda: len(list(ipr.get_routes(family=2, table=254))), 1)
        ipr.close()
    sock.close()
    print(f"\n3. in process, the IPv4 table ({max(counts):,} routes): dump + NDJSON text "
          f"{t_nd:.2f} s ({t_nd / n * 1e6:.2f} µs/route); dump + decode into NlMsg objects "
          f"{t_obj:.2f} s ({t_obj / n * 1e6:.2f} µs/route)"
          + (f"; pyroute2 IPRoute().get_routes() {t_py:.1f} s ({t_py / t_nd:.0f}x the NDJSON)"
             if t_py else ""))


def setup(lab: Lab, tmp: Path, routes6: int, objects: int) -> dict[str, str]:
    """Namespaces holding each table; returns kind -> namespace."""
    names = {}
    ns6 = lab.netns("nl6").name
    t = ip_batch(ns6, ["link add b0 type veth peer name b1", "link set b0 up",
                       "link set b1 up", "addr add 2001:db8:80::1/64 dev b0 nodad"]
                 + [f"route add 2001:db8:{0x1000 + (i >> 16):x}:{i & 0xFFFF:x}::/64 via "
                    "2001:db8:80::2" for i in range(routes6)], tmp)
    print(f"setup: {routes6:,} IPv6 routes in {t:.1f} s")
    names["routes6"] = ns6
    nsl = lab.netns("nllink").name
    t = ip_batch(nsl, [f"link add v{i}a type veth peer name v{i}b" for i in range(objects // 2)],
                 tmp)
    print(f"setup: {objects:,} links in {t:.1f} s")
    names["links"] = nsl
    nso = lab.netns("nlobj").name
    devs = 50  # addresses spread over 50 links: the kernel's per-link list is linear
    lines = [f"link add e{d}a type veth peer name e{d}b\nlink set e{d}a up\nlink set e{d}b up"
             for d in range(devs)]
    lines += [f"addr add 10.{v4(i)}/32 dev e{i % devs}a" for i in range(objects)]
    lines += [f"neigh add 10.{v4(i)} lladdr 02:00:{i >> 24 & 255:02x}:{i >> 16 & 255:02x}:"
              f"{i >> 8 & 255:02x}:{i & 255:02x} dev e{i % devs}b" for i in range(objects)]
    t = ip_batch(nso, lines, tmp)
    print(f"setup: {objects:,} addresses and {objects:,} neighbours on {devs} veth pairs "
          f"in {t:.1f} s")
    names["addrs"] = names["neigh"] = nso
    return names


def dumps(rows: list[tuple[str, str, list[str], list[str]]], runs: int) -> None:
    print(f"\n2. dumps to JSON, end to end (process start included); best of {runs}, in turns")
    print(f"  {'table':<30}{'rawlab --json':>14}{'RSS':>9}{'ip -j':>10}{'RSS':>9}"
          f"{'rawlab / ip':>13}")
    for label, ns, ours, theirs in rows:
        got = race({"rawlab": [RAWLAB, "netlink", "dump", *ours, "--netns", ns, "--json"],
                    "ip": ["ip", "-n", ns, "-j", *theirs]}, runs)
        (t_rl, rss_rl), (t_ip, rss_ip) = got["rawlab"], got["ip"]
        print(f"  {label:<30}{t_rl:>12.2f} s{rss_rl / 1024:>6.0f} MB{t_ip:>8.2f} s"
              f"{rss_ip / 1024:>6.0f} MB{t_rl / t_ip:>12.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--burst", type=int, default=1_000_000, help="IPv4 routes installed "
                    "while monitoring (then dumped)")
    ap.add_argument("--routes6", type=int, default=200_000)
    ap.add_argument("--objects", type=int, default=100_000, help="links, addresses and "
                    "neighbours each")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pyroute2-dump", action="store_true", help="also time pyroute2's dump "
                    "of the IPv4 table (minutes at 1M)")
    ap.add_argument("--quick", action="store_true", help="20,000 of everything")
    args = ap.parse_args()
    if args.quick:
        args.burst = args.routes6 = args.objects = 20_000
    if os.geteuid() != 0:
        sys.exit("bench/netlink needs root (it creates network namespaces)")
    from rawlab.lab.netns import Lab

    with Lab() as lab, tempfile.TemporaryDirectory(prefix="rawlab-nlbench-") as d:
        tmp = Path(d)
        ns4 = lab.netns("nl4").name
        ip_batch(ns4, ["link add a0 type veth peer name a1", "addr add 10.80.0.1/16 dev a0",
                       "link set a0 up", "link set a1 up"], tmp)
        print(f"namespaces under test; {os.cpu_count()} CPUs; kernel {os.uname().release}")
        burst(ns4, tmp, args.burst)
        names = setup(lab, tmp, args.routes6, args.objects)
        dumps([(f"{args.burst:,} IPv4 routes", ns4, ["routes"], ["route"]),
               (f"{args.routes6:,} IPv6 routes", names["routes6"], ["routes", "-6"],
                ["-6", "route"]),
               (f"{args.objects:,} links", names["links"], ["links"], ["link"]),
               (f"{args.objects:,} addresses", names["addrs"], ["addrs"], ["addr"]),
               (f"{args.objects:,} neighbours", names["neigh"], ["neigh"], ["neigh"])],
              args.runs)
        in_process(ns4, args.burst, args.runs, args.pyroute2_dump)


if __name__ == "__main__":
    main()
