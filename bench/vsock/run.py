"""bench/vsock: rawlab `vsock bench` vs socat, in one lab guest, same run.

    .venv/bin/python bench/vsock/run.py [--bytes 64M] [--runs 7]

Boots one virtme-ng guest (Debian's kernel; KVM when it really works here, else
software emulation), loads vsock_loopback, runs bench/vsock/guest.py there and
prints the table. Throughput at 4 KiB and 64 KiB messages (the size of each write,
for both tools). rawlab's numbers are bytes the server verified (count + CRC-32),
first send to the server's report; socat's are its listener's own time from accept
to EOF (its -lu log), with wall clock minus start-up as a cross-check. The tools take
turns in each round; the table gives the medians and each round's rawlab / socat
ratio. Latency is rawlab's 1-byte round trip (no peer measures it). See bench/vsock/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from rawlab.lab import vm

HERE = Path(__file__).resolve().parent


def mib(x: float) -> str:
    return f"{x / (1 << 20):8.1f}"


def us(ns: float) -> str:
    return f"{ns / 1e3:.1f} µs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", default="64M", help="bytes per throughput run")
    ap.add_argument("--runs", type=int, default=7, help="rounds per size (median)")
    ap.add_argument("--count", default="5000", help="1-byte round trips")
    a = ap.parse_args()
    cmd = (f"{sys.executable} {HERE / 'guest.py'} --bytes {a.bytes} --runs {a.runs} "
           f"--count {a.count}")
    res = vm.run(cmd, modules=["vsock_loopback", "vsock_diag"], timeout=1800)
    line = next((ln for ln in res.output.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if res.returncode != 0 or line is None:
        sys.exit(f"guest run failed (exit {res.returncode}):\n{res.output[-3000:]}")
    r = json.loads(line.removeprefix("BENCH_JSON "))
    bad = [s["msg_size"] for s in r["sizes"] if not s["rawlab_verified"]]
    if bad:
        sys.exit(f"rawlab runs at {bad} B were not verified by the server")
    emu = "KVM" if res.accel == "kvm" else "software emulation (TCG, no KVM)"
    print(f"vsock over vsock_loopback (CID 1), one guest, kernel {res.kernel.release}, {emu};")
    print(f"{r['bytes'] >> 20} MiB per run, median of {r['runs']} rounds, the tools taking "
          "turns in each; same guest, same run\n")
    print("| message | rawlab bench MiB/s (verified) | socat MiB/s | rawlab / socat | "
          "each round: median (min–max) |")
    print("|---|---:|---:|---:|---:|")
    for s in r["sizes"]:
        ratio = s["rawlab_bytes_per_s"] / s["socat_bytes_per_s"]
        rr = s["ratio_runs"]
        print(f"| {s['msg_size'] >> 10} KiB | {mib(s['rawlab_bytes_per_s'])} | "
              f"{mib(s['socat_bytes_per_s'])} | {ratio:.2f}x | "
              f"{statistics.median(rr):.2f}x ({min(rr):.2f}–{max(rr):.2f}) |")
    print()
    for s in r["sizes"]:
        print(f"{s['msg_size'] >> 10:>2} KiB runs, MiB/s: rawlab "
              + " ".join(f"{x / (1 << 20):.0f}" for x in s["rawlab_runs"])
              + " | socat " + " ".join(f"{x / (1 << 20):.0f}" for x in s["socat_runs"])
              + " | ratio " + " ".join(f"{x:.2f}" for x in s["ratio_runs"])
              + " | socat ref " + " ".join(f"{x / (1 << 20):.0f}" for x in s["socat_ref_runs"]))
    print("socat cross-check, wall clock minus the median 1-byte pair (start-up "
          + " / ".join(f"{1e3 * s['socat']['startup_median_seconds']:.0f}" for s in r["sizes"])
          + " ms): " + ", ".join(f"{s['msg_size'] >> 10} KiB "
                                 f"{mib(s['socat_wall_bytes_per_s']).strip()} MiB/s"
                                 for s in r["sizes"]))
    ref = ", ".join(f"{s['msg_size'] >> 10} KiB {mib(s['socat_ref_bytes_per_s']).strip()} MiB/s "
                    f"({s['rawlab_bytes_per_s'] / s['socat_ref_bytes_per_s']:.2f}x)"
                    for s in r["sizes"])
    print(f"reference: socat with its listener reading {r['sizes'][0]['socat_ref_read'] >> 10} "
          f"KiB per read as rawlab's server does (writes unchanged): {ref}")
    lat, con = r["latency"], r["connect"]
    print(f"\nrawlab 1-byte round trip (n={lat['count']}): p50 {us(lat['p50_ns'])}, "
          f"p99 {us(lat['p99_ns'])}, p999 {us(lat['p999_ns'])} (socat: no such measurement)")
    print(f"rawlab connect (n={con['count']}): p50 {us(con['p50_ns'])}, p99 {us(con['p99_ns'])}")
    print(f"\nguest wall time {res.seconds:.0f} s"
          + ("; numbers from software emulation are relative, not what KVM or hardware gives"
             if res.accel != "kvm" else ""))


if __name__ == "__main__":
    main()
