"""bench/vsock: rawlab `vsock bench` vs socat, in one lab guest, same run.

    .venv/bin/python bench/vsock/run.py [--bytes 64M] [--runs 3]

Boots one virtme-ng guest (Debian's kernel; KVM when it really works here, else
software emulation), loads vsock_loopback, runs bench/vsock/guest.py there and
prints the table. Throughput at 4 KiB and 64 KiB messages; rawlab's numbers are
bytes the server verified (count + CRC-32), socat's are wall clock to /dev/null
minus its start-up; latency is rawlab's 1-byte round trip (no peer measures it).
"""

from __future__ import annotations

import argparse
import json
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
    ap.add_argument("--runs", type=int, default=3, help="runs per size (median)")
    ap.add_argument("--count", default="5000", help="1-byte round trips")
    a = ap.parse_args()
    cmd = (f"{sys.executable} {HERE / 'guest.py'} --bytes {a.bytes} --runs {a.runs} "
           f"--count {a.count}")
    res = vm.run(cmd, modules=["vsock_loopback", "vsock_diag"], timeout=1800)
    line = next((ln for ln in res.output.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if res.returncode != 0 or line is None:
        sys.exit(f"guest run failed (exit {res.returncode}):\n{res.output[-3000:]}")
    r = json.loads(line.removeprefix("BENCH_JSON "))
    emu = "KVM" if res.accel == "kvm" else "software emulation (TCG, no KVM)"
    print(f"vsock over vsock_loopback (CID 1), one guest, kernel {res.kernel.release}, {emu};")
    print(f"{r['bytes'] >> 20} MiB per run, median of {r['runs']} runs; same guest, same run\n")
    print("| message | rawlab bench MiB/s (verified) | socat MiB/s | rawlab / socat |")
    print("|---|---:|---:|---:|")
    for s in r["sizes"]:
        ratio = s["rawlab_bytes_per_s"] / s["socat_bytes_per_s"]
        print(f"| {s['msg_size'] >> 10} KiB | {mib(s['rawlab_bytes_per_s'])} | "
              f"{mib(s['socat_bytes_per_s'])} | {ratio:.2f}x |")
    lat, con = r["latency"], r["connect"]
    print(f"\nrawlab 1-byte round trip (n={lat['count']}): p50 {us(lat['p50_ns'])}, "
          f"p99 {us(lat['p99_ns'])}, p999 {us(lat['p999_ns'])} (socat: no such measurement)")
    print(f"rawlab connect (n={con['count']}): p50 {us(con['p50_ns'])}, p99 {us(con['p99_ns'])}")
    print(f"\nguest wall time {res.seconds:.0f} s; numbers from software emulation are "
          "relative, not what KVM or hardware gives" if res.accel != "kvm" else "")


if __name__ == "__main__":
    main()
