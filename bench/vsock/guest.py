"""bench/vsock, guest side: rawlab `vsock bench` vs socat over vsock_loopback (CID 1).

Run by bench/vsock/run.py inside one lab guest (never on the build machine: its CID 2
is a real hypervisor). Prints one line `BENCH_JSON {...}` for the host to tabulate.

* rawlab: `rawlab vsock bench-server` + `rawlab vsock bench --test throughput`:
  bytes and CRC-32 verified by the server, clock from first send to the server's report.
  The client writes SIZE bytes per send(); the server reads up to 256 KiB per recv.
* socat: `socat -d -d -lu -u -b SIZE VSOCK-LISTEN:P OPEN:/dev/null` fed by
  `socat -u -b SIZE OPEN:/dev/zero,readbytes=N VSOCK-CONNECT:1:P` (writes of SIZE bytes,
  as rawlab's client; the listener reads SIZE bytes per read), timed by the listener's
  own microsecond log: from accepting the connection to EOF (no process start-up in
  it). Cross-check: wall clock from starting the sender until the listener exited,
  minus the median time of the same pair for 1 byte (measured once per round).
* reference, not the goal's peer: the same socat pair with the listener reading 256 KiB
  per read (`-b 262144`), as rawlab's server does; the sender still writes SIZE bytes.
* Rounds interleave the tools (rawlab first in even rounds, last in odd ones), so a
  busy spell on the host hits both; each round's rawlab / socat ratio is kept.
* latency: rawlab's 1-byte round trips, p50/p99/p999 (socat has no such measurement).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RAWLAB = str(Path(sys.executable).with_name("rawlab"))
REF_READ = 256 * 1024  # rawlab's server read size (vsockbench.READ_SIZE)


def wait_listening(port: int) -> None:
    from rawlab.analysis.netlink import wait_vsock_listening

    if not wait_vsock_listening(port):
        raise RuntimeError(f"socat never listened on vsock port {port}")


_STAMP = re.compile(r"^\S+ (\d\d):(\d\d):(\d\d\.\d+) socat\[\d+\] N (.*)$")


def _transfer_seconds(log: str) -> float:
    """The listener's own time from accepting the connection to EOF (its -lu log)."""
    when: dict[str, float] = {}
    for line in log.splitlines():
        m = _STAMP.match(line)
        if m:
            t = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
            if m[4].startswith("accepting connection"):
                when.setdefault("accept", t)
            elif m[4].endswith("is at EOF"):
                when.setdefault("eof", t)
    if len(when) != 2:
        raise RuntimeError(f"socat's log lacks accept/EOF lines:\n{log}")
    return (when["eof"] - when["accept"]) % 86400  # a run across midnight


def socat_pair(port: int, size: int, total: int,
               listen_read: int | None = None) -> tuple[float, float]:
    """socat moving `total` bytes to /dev/null through vsock port `port`.

    The sender writes `size` bytes per write; the listener reads `listen_read` (default
    `size`) bytes per read. Returns (wall seconds from starting the sender until the
    listener exited, the listener's own seconds from accept to EOF).
    """
    lst = subprocess.Popen(["socat", "-d", "-d", "-lu", "-u", "-b", str(listen_read or size),
                            f"VSOCK-LISTEN:{port}", "OPEN:/dev/null"],
                           stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port)
        t0 = time.perf_counter()
        subprocess.run(["socat", "-u", "-b", str(size), f"OPEN:/dev/zero,readbytes={total}",
                        f"VSOCK-CONNECT:1:{port}"], check=True, timeout=600)
        _out, log = lst.communicate(timeout=600)
        wall = time.perf_counter() - t0
        if lst.returncode != 0:
            raise RuntimeError(f"socat listener exit {lst.returncode}:\n{log}")
        return wall, _transfer_seconds(log)
    finally:
        if lst.poll() is None:
            lst.kill()


def rawlab_bench(args: list[str]) -> dict[str, Any]:
    srv = subprocess.Popen([RAWLAB, "vsock", "bench-server", "any", "--cid", "local",
                            "--json"], stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout is not None
        port = json.loads(srv.stdout.readline())["local"]["port"]
        res = subprocess.run([RAWLAB, "vsock", "bench", f"1:{port}", "--json", *args],
                             capture_output=True, text=True, check=False, timeout=900)
        if res.returncode != 0:
            raise SystemExit(f"rawlab vsock bench {' '.join(args)}: exit {res.returncode}: "
                             f"{res.stderr.strip()}")
        return json.loads(res.stdout)
    finally:
        srv.terminate()
        srv.wait(timeout=30)


def throughput(size: int, total: int, runs: int, port0: int) -> dict[str, Any]:
    """`runs` interleaved rounds of: socat start-up (1 byte), rawlab, socat, socat ref."""
    port = port0
    raw: list[dict[str, Any]] = []
    secs: dict[str, list[tuple[float, float]]] = {"startup": [], "socat": [], "socat_ref": []}

    def step(name: str) -> None:
        nonlocal port
        if name == "rawlab":
            raw.append(rawlab_bench(["--test", "throughput", "--size", str(size),
                                     "--bytes", str(total)])["throughput"][0])
            return
        n = 1 if name == "startup" else total
        secs[name].append(socat_pair(port, size, n, REF_READ if name == "socat_ref" else None))
        port += 1

    for r in range(runs):
        order = ["startup", "rawlab", "socat", "socat_ref"]
        for name in order if r % 2 == 0 else order[::-1]:
            step(name)
    startup = statistics.median(w for w, _t in secs["startup"])
    raw_bps = [t["bytes_per_s"] for t in raw]
    soc_bps = [total / t for _w, t in secs["socat"]]
    ref_bps = [total / t for _w, t in secs["socat_ref"]]
    wall_bps = [total / max(w - startup, 1e-9) for w, _t in secs["socat"]]
    return {
        "msg_size": size,
        "rawlab_bytes_per_s": statistics.median(raw_bps),
        "rawlab_runs": raw_bps,
        "rawlab_verified": all(t["verified"] for t in raw),
        "socat_bytes_per_s": statistics.median(soc_bps),
        "socat_runs": soc_bps,
        "ratio_runs": [a / b for a, b in zip(raw_bps, soc_bps, strict=True)],
        "socat_wall_bytes_per_s": statistics.median(wall_bps),
        "socat_wall_runs": wall_bps,
        "socat_ref_read": REF_READ,
        "socat_ref_bytes_per_s": statistics.median(ref_bps),
        "socat_ref_runs": ref_bps,
        "socat": {"bytes": total,
                  "wall_seconds": [w for w, _t in secs["socat"]],
                  "transfer_seconds": [t for _w, t in secs["socat"]],
                  "ref_transfer_seconds": [t for _w, t in secs["socat_ref"]],
                  "startup_seconds": [w for w, _t in secs["startup"]],
                  "startup_median_seconds": startup},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bytes", default="64M")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--count", default="5000")
    a = ap.parse_args()
    from rawlab.sockets.vsockbench import parse_size

    total = parse_size(a.bytes)
    result: dict[str, Any] = {"bytes": total, "runs": a.runs, "sizes": []}
    for i, size in enumerate((4096, 65536)):
        result["sizes"].append(throughput(size, total, a.runs, 43000 + 100 * i))
    lat = rawlab_bench(["--test", "latency", "--latency-size", "1", "--count", a.count])
    result["latency"] = lat["latency"][0]
    conn = rawlab_bench(["--test", "connect", "--connects", "200"])
    result["connect"] = conn["connect"]
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
