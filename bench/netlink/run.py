"""Netlink benchmark, inside a namespace it creates (root):

1. burst: 20,000 route adds via `ip -batch` while monitoring. Events received by
   `rawlab netlink monitor`, `ip monitor route`, and a pyroute2 `IPRoute().get()` loop.
2. dump of 20,000 routes with full decode: rawlab (in-process: dump + decode into objects,
   dump + NDJSON text; and the CLI end to end, the number the goal is about, with its
   start-up alone beside it), pyroute2 `IPRoute().get_routes()`, `ip -j route`.

    sudo .venv/bin/python bench/netlink/run.py [--routes 20000] [--skip-pyroute2-dump]
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
from pathlib import Path

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


def batch_file(tmp: Path, n: int, verb: str) -> Path:
    path = tmp / f"routes.{verb}"
    path.write_text("".join(f"route {verb} 172.{16 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32 "
                            "via 10.80.0.2\n" for i in range(n)))
    return path


def burst(ns: str, tmp: Path, n: int) -> dict[str, str]:
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
        t0 = time.perf_counter()
        subprocess.run(["ip", "-n", ns, "-batch", str(batch_file(tmp, n, "add"))], check=True)
        t_batch = time.perf_counter() - t0
        time.sleep(3.0)
        for p in (rl, ipm):
            p.send_signal(signal.SIGTERM)
        rl.communicate(timeout=120)
        ipm.wait(timeout=30)
        try:
            pout, _ = pyr.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            pyr.kill()
            pout, _ = pyr.communicate()
    recs = [json.loads(x) for x in rl_out.read_text().splitlines()]
    rl_n = sum(1 for r in recs if r.get("event") == "message"
               and r["nlmsg_type"] == "RTM_NEWROUTE" and r["attrs"]["RTA_DST"].startswith("172."))
    rl_resync = sum(1 for r in recs if r.get("event") == "resync" and r["change"] == "added")
    ip_n = sum(1 for line in ip_out.read_text().splitlines() if line.startswith("172."))
    pres = json.loads(pout.strip().splitlines()[-1]) if pout.strip() else {"received": 0,
                                                                            "error": "no output"}
    print(f"\n1. burst: {n:,} route adds via `ip -batch` in {t_batch:.2f} s")
    print(f"  {'monitor':<34}{'received':>10}  note")
    print(f"  {'rawlab netlink monitor --json':<34}{rl_n:>10,}  "
          f"overflows {recs[-1]['summary']['overflows']}, re-dump added {rl_resync}")
    print(f"  {'ip monitor route':<34}{ip_n:>10,}")
    print(f"  {'pyroute2 IPRoute().get() loop':<34}{pres['received']:>10,}  "
          f"{pres['error'] or ''}")
    return {"rawlab": f"{rl_n}/{n}", "ip": f"{ip_n}/{n}", "pyroute2": f"{pres['received']}/{n}"}


def best(fn: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def dump(ns: str, n: int, skip_pyroute2: bool) -> None:
    from rawlab.analysis.netlink import dump_messages
    from rawlab.lab.netns import entered
    from rawlab.sockets.netlink import DumpSocket, dump_buffers

    with entered(ns):
        sock = DumpSocket()
    counts: list[int] = []

    def rawlab_inproc() -> None:
        from rawlab.present.netlink_shapes import ShapeRenderer

        encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        shapes = ShapeRenderer(encode)
        bufs = dump_buffers(sock, "routes", family=2, table=254)
        counts.append(sum(t.count(b"\n") for b in bufs for t in shapes.render(b)))

    def rawlab_decode_only() -> None:
        gc.disable()
        try:
            counts.append(sum(1 for _ in dump_messages(sock, "routes", family=2, table=254)))
        finally:
            gc.enable()

    rawlab_decode_only()  # warm: the first use reads the attribute maps once
    t_dec = best(rawlab_decode_only, 5)
    t_rl = best(rawlab_inproc, 5)
    devnull = open(os.devnull, "w")  # noqa: SIM115
    t_cli = best(lambda: subprocess.run([RAWLAB, "netlink", "dump", "routes", "--netns", ns,
                                         "--json"], stdout=devnull, check=True), 7)
    t_start = best(lambda: subprocess.run([RAWLAB, "netlink", "dump", "--help"],
                                          stdout=devnull, check=True), 7)
    t_ip = best(lambda: subprocess.run(["ip", "-n", ns, "-j", "route"], stdout=devnull,
                                       check=True), 7)
    t_py = None
    if not skip_pyroute2:
        from pyroute2 import IPRoute

        with entered(ns):
            ipr = IPRoute()
        got: list[int] = []
        t_py = best(lambda: got.append(len(list(ipr.get_routes(family=2, table=254)))), 3)
        ipr.close()
    sock.close()
    print(f"\n2. dump {n:,} routes (table main), full decode; best of several runs")
    print(f"  {'tool':<48}{'time':>9}  {'vs pyroute2':>12}  {'vs ip -j':>9}")

    def row(name: str, t: float) -> None:
        vp = f"{t_py / t:.1f}x faster" if t_py else "-"
        print(f"  {name:<48}{t * 1000:>7.0f} ms  {vp:>12}  {t / t_ip:>8.1f}x")

    row("rawlab in-process: dump + decode (NlMsg objects)", t_dec)
    row("rawlab in-process: dump + NDJSON text", t_rl)
    row("rawlab netlink dump routes --json (CLI, process)", t_cli)
    row("  vs `rawlab netlink dump --help` (start-up, no dump)", t_start)
    if t_py:
        row("pyroute2 IPRoute().get_routes()", t_py)
    row("ip -j route (process)", t_ip)
    print(f"  (rawlab decoded {max(counts):,} routes per dump)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", type=int, default=20000)
    ap.add_argument("--skip-pyroute2-dump", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/netlink needs root (it creates a network namespace)")
    from rawlab.lab.netns import Lab

    with Lab() as lab, tempfile.TemporaryDirectory(prefix="rawlab-nlbench-") as d:
        ns = lab.netns("nlbench")
        for cmd in (["link", "add", "a0", "type", "veth", "peer", "name", "a1"],
                    ["addr", "add", "10.80.0.1/16", "dev", "a0"],
                    ["link", "set", "a0", "up"], ["link", "set", "a1", "up"]):
            subprocess.run(["ip", "-n", ns.name, *cmd], check=True)
        print(f"namespace {ns.name}; {os.cpu_count()} CPUs; kernel {os.uname().release}")
        burst(ns.name, Path(d), args.routes)
        dump(ns.name, args.routes, args.skip_pyroute2_dump)


if __name__ == "__main__":
    main()
