"""bench/vsock, guest side: rawlab `vsock bench` vs socat over vsock_loopback (CID 1).

Run by bench/vsock/run.py inside one lab guest (never on the build machine: its CID 2
is a real hypervisor). Prints one line `BENCH_JSON {...}` for the host to tabulate.

* rawlab: `rawlab vsock bench-server` + `rawlab vsock bench --test throughput`:
  bytes and CRC-32 verified by the server, clock from first send to the server's report.
* socat: `socat -u -b SIZE VSOCK-LISTEN:P OPEN:/dev/null` fed by
  `socat -u -b SIZE OPEN:/dev/zero,readbytes=N VSOCK-CONNECT:1:P`, wall clock from
  starting the sender until the listener has written everything and exited, minus
  the same pair's time for 1 byte (process start-up).
* latency: rawlab's 1-byte round trips, p50/p99/p999 (socat has no such measurement).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = subprocess.run(["ss", "-H", "-l", "--vsock"], capture_output=True, text=True,
                             check=False).stdout
        if f":{port} " in out:
            return
        time.sleep(0.02)
    raise RuntimeError(f"socat never listened on vsock port {port}")


def socat_pair(port: int, size: int, total: int) -> float:
    """Seconds for socat to move `total` bytes to /dev/null through vsock port `port`."""
    lst = subprocess.Popen(["socat", "-u", "-b", str(size), f"VSOCK-LISTEN:{port}",
                            "OPEN:/dev/null"])
    try:
        wait_listening(port)
        t0 = time.perf_counter()
        subprocess.run(["socat", "-u", "-b", str(size), f"OPEN:/dev/zero,readbytes={total}",
                        f"VSOCK-CONNECT:1:{port}"], check=True, timeout=600)
        lst.wait(timeout=600)
        return time.perf_counter() - t0
    finally:
        if lst.poll() is None:
            lst.kill()


def socat_throughput(size: int, total: int, runs: int, port0: int) -> dict[str, Any]:
    startup = min(socat_pair(port0 + i, size, 1) for i in range(2))
    secs = [socat_pair(port0 + 10 + i, size, total) for i in range(runs)]
    best = statistics.median(secs)
    return {"msg_size": size, "bytes": total, "seconds": secs, "startup_seconds": startup,
            "bytes_per_s": total / max(best - startup, 1e-9)}


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bytes", default="64M")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--count", default="5000")
    a = ap.parse_args()
    from rawlab.sockets.vsockbench import parse_size

    total = parse_size(a.bytes)
    result: dict[str, Any] = {"bytes": total, "runs": a.runs, "sizes": []}
    for i, size in enumerate((4096, 65536)):
        raw = [rawlab_bench(["--test", "throughput", "--size", str(size), "--bytes", a.bytes])
               ["throughput"][0] for _ in range(a.runs)]
        soc = socat_throughput(size, total, a.runs, 43000 + 100 * i)
        result["sizes"].append({
            "msg_size": size,
            "rawlab_bytes_per_s": statistics.median(t["bytes_per_s"] for t in raw),
            "rawlab_runs": [t["bytes_per_s"] for t in raw],
            "socat_bytes_per_s": soc["bytes_per_s"],
            "socat": soc,
        })
    lat = rawlab_bench(["--test", "latency", "--latency-size", "1", "--count", a.count])
    result["latency"] = lat["latency"][0]
    conn = rawlab_bench(["--test", "connect", "--connects", "200"])
    result["connect"] = conn["connect"]
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
