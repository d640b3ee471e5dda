"""bench/view: opening a big capture in a terminal — rawlab view vs termshark vs tshark, one run.

    .venv/bin/python bench/view/run.py [--packets 9600000] [--keep FILE] [--pattern PCAP]

1. Builds a ~1 GB capture: captures/tcp-loss.pcap (a lossy bulk transfer, snaplen 96)
   repeated with new client ports and later timestamps (bench/tcp's ``replicate``)
   until the file holds ``--packets`` packets.
2. In a 120x36 terminal (tmux, a server of its own), measures from the command's start:
   the **first screen** (the first packet's row drawn) of ``rawlab view FILE``,
   ``termshark -r FILE`` and ``tshark -r FILE | head -n 34`` (the same 34 rows printed
   and tshark stopped); for rawlab view also the **whole file indexed** (the status line
   says every frame is known) and the **peak memory** of the process (VmHWM); for
   both, the CPU seconds used until the first screen (load-independent); for
   termshark how much it has loaded after ``--wait`` seconds (its own percentage: the
   whole file's time is extrapolated) and the peak memory of termshark and of the tshark
   processes it runs.
3. Prints a table.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOCKET = f"rawlab-bench-view-{os.getpid()}"
TMUX = ["tmux", "-L", SOCKET]


def replicate(pattern: Path, out: Path, target: int) -> int:
    spec = importlib.util.spec_from_file_location("bench_tcp", ROOT / "bench" / "tcp" / "run.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return int(mod.replicate(pattern, out, target))


def pane(name: str) -> str:
    return subprocess.run([*TMUX, "capture-pane", "-p", "-t", name], capture_output=True,
                          text=True, check=False).stdout


def run_in_terminal(name: str, cmd: str, pidfile: Path) -> float:
    """Start ``cmd`` in a new tmux session; returns its start time (perf_counter)."""
    inner = f"echo $$ > {pidfile}; exec {cmd}"
    t = time.perf_counter()
    subprocess.run([*TMUX, "new-session", "-d", "-s", name, "-x", "120", "-y", "36",
                    "bash", "-c", inner], check=True)
    return t


def wait(name: str, test: Callable[[str], bool], timeout: float) -> float | None:
    """Seconds (perf_counter) at which the screen first passes ``test``; None on timeout."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if test(pane(name)):
            return time.perf_counter()
        time.sleep(0.01)
    return None


def peak_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_of(pidfile: Path) -> int:
    end = time.monotonic() + 10
    while not pidfile.exists() or not pidfile.read_text().strip():
        if time.monotonic() > end:
            raise SystemExit(f"{pidfile}: no pid")
        time.sleep(0.01)
    return int(pidfile.read_text())


def stop(name: str) -> None:
    subprocess.run([*TMUX, "kill-session", "-t", name], check=False, capture_output=True)


FIRST_ROW = re.compile(r"^\s*1\s+0\.0000", re.M)


def bench_rawlab(cap: Path, n: int, tmp: Path, timeout: float) -> dict[str, float | None]:
    rawlab = Path(sys.executable).parent / "rawlab"
    pidfile = tmp / "rawlab.pid"
    t0 = run_in_terminal("rawlab", f"{rawlab} view {cap}", pidfile)
    pid = pid_of(pidfile)
    first = wait("rawlab", lambda s: bool(FIRST_ROW.search(s)), timeout)
    cpu = cpu_s(pid)
    full = wait("rawlab", lambda s: f"\n{n:,} frames" in s, timeout)
    mem = peak_kib(pid)
    subprocess.run([*TMUX, "send-keys", "-t", "rawlab", "q"], check=False)
    time.sleep(1)
    stop("rawlab")
    return {"first": first - t0 if first else None, "full": full - t0 if full else None,
            "mem": mem / 1024, "cpu": cpu}


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = subprocess.run(["pgrep", "-P", str(p)], capture_output=True, text=True,
                              check=False).stdout.split()
        out += [int(k) for k in kids]
        todo += [int(k) for k in kids]
    return out


def bench_termshark(cap: Path, tmp: Path, timeout: float, wait_s: float) -> dict[str, object]:
    """termshark's first screen; after ``wait_s`` seconds, how much it has loaded (the
    percentage its filter bar shows while tshark reads the file: the whole file's time is
    extrapolated from it) and the peak memory of termshark and of its tshark processes."""
    pidfile = tmp / "termshark.pid"
    t0 = run_in_terminal("termshark", f"termshark -r {cap}", pidfile)
    pid = pid_of(pidfile)
    first = wait("termshark", lambda s: bool(FIRST_ROW.search(s)), timeout)
    cpu = cpu_s(pid) + sum(cpu_s(k) for k in descendants(pid))
    pct = None
    if first is not None:
        time.sleep(max(0.0, wait_s - (time.perf_counter() - t0)))
        bar = pane("termshark").splitlines()[2:3]
        m = re.search(r"(\d+) %", bar[0]) if bar else None
        pct = int(m.group(1)) if m else 100
    kids = descendants(pid)
    mem = peak_kib(pid) / 1024
    kid_mem = sum(peak_kib(k) for k in kids) / 1024
    stop("termshark")
    for k in kids:  # its tshark processes outlive the terminal
        try:
            os.kill(k, 9)
        except OSError:
            pass
    return {"first": first - t0 if first else None, "mem": mem, "kid_mem": kid_mem,
            "pct": pct, "whole": wait_s * 100 / pct if pct else None, "cpu": cpu}


def bench_tshark_head(cap: Path) -> float:
    t = time.perf_counter()
    subprocess.run(f"tshark -n -r {cap} 2>/dev/null | head -n 34 > /dev/null", shell=True,
                   check=False)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=9_600_000)
    ap.add_argument("--pattern", type=Path, default=ROOT / "captures" / "tcp-loss.pcap")
    ap.add_argument("--keep", type=Path, help="keep (or reuse, if it exists) the capture here")
    ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for a screen")
    ap.add_argument("--wait", type=float, default=60,
                    help="seconds after which termshark's loading is read")
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("needs tmux (./setup.sh --test installs it)")
    with tempfile.TemporaryDirectory(prefix="rawlab-bench-view-") as d:
        tmp = Path(d)
        cap = args.keep or tmp / "big.pcap"
        t = time.perf_counter()
        if not cap.exists():
            replicate(args.pattern, cap, args.packets)
        from rawlab.pcap.index import FrameIndex

        idx = FrameIndex(cap)
        idx.build()
        n = len(idx)
        idx.close()
        print(f"capture: {n:,} packets, {cap.stat().st_size / 1e9:.2f} GB "
              f"(ready in {time.perf_counter() - t:.1f} s)")
        try:
            r = bench_rawlab(cap, n, tmp, args.timeout)
            ts = bench_termshark(cap, tmp, args.timeout, args.wait) if shutil.which(
                "termshark") else None
            th = bench_tshark_head(cap)
        finally:
            subprocess.run([*TMUX, "kill-server"], check=False, capture_output=True)
            Path(os.environ.get("TMUX_TMPDIR", "/tmp"), f"tmux-{os.getuid()}",
                 SOCKET).unlink(missing_ok=True)

    def s(v: object) -> str:
        return "timeout" if v is None else f"{v:.2f} s"

    load = os.getloadavg()[0]
    print(f"(load average {load:.1f} on {os.cpu_count()} cores: wall times stretch with it; "
          "the CPU seconds used until the first screen do not)")
    print(f"{'tool':34} {'first screen':>13} {'(CPU)':>8} {'whole file':>12} {'peak memory':>12}")
    print(f"{'rawlab view':34} {s(r['first']):>13} {r['cpu']:>6.2f} s {s(r['full']):>12} "
          f"{r['mem']:>9.0f} MiB")
    if ts is not None:
        whole = (f"~{ts['whole']:.0f} s" if ts["pct"] and ts["pct"] < 100 else
                 f"< {args.wait:.0f} s") if ts["whole"] else "-"
        print(f"{'termshark -r':34} {s(ts['first']):>13} {ts['cpu']:>6.2f} s {whole:>12} "
              f"{ts['mem']:>9.0f} MiB"
              f"  ({ts['pct']} % loaded after {args.wait:.0f} s, extrapolated; its tshark "
              f"processes: {ts['kid_mem']:.0f} MiB more)")
    print(f"{'tshark -r | head -n 34':34} {s(th):>13} {'':>8} {'-':>12} {'-':>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
