"""bench/tcp: TCP analysis throughput — rawlab vs tcptrace vs tshark vs scapy TCPSession, one run.

    sudo .venv/bin/python bench/tcp/run.py [--packets 550000] [--keep FILE]

1. Records one lossy bulk transfer in a throwaway namespace pair (veth, offloads
   off, nftables ``numgen random mod 100 < 2 drop`` at the receiver, tcpdump
   -s 96), then repeats that recorded flow pattern with new client ports and
   later timestamps until the file holds ``--packets`` packets (each copy is a
   separate connection with real retransmissions, dup ACKs and out-of-order
   segments, as recorded).
2. Times, on that file: the connection table ``rawlab tcp FILE`` (the columnar
   summary) against ``tcptrace -l FILE`` (its peer: the same per-connection figures,
   tests/unit/test_tcp_columns.py); the exact analyser ``rawlab tcp --json FILE``
   against ``tshark -r FILE -T fields -e frame.number -e tcp.analysis.flags``; and
   scapy's ``sniff(offline=..., session=TCPSession)`` on the first
   ``--scapy-packets`` packets only (scapy is ~100x slower: its rate is
   measured on the subset and extrapolated, and the output says so). Every output
   goes to /dev/null; ``--rounds N`` runs the rawlab/peer pairs N times, interleaved.
3. Prints packets/s for each and the ratios (table vs tcptrace, --json vs tshark).
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PORT = 5001


def record_pattern(out: Path, size: int, loss: int) -> None:
    """One lossy transfer of `size` bytes, captured at the receiver (needs root)."""
    sys.path.insert(0, str(ROOT / "tests" / "privileged"))
    sys.path.insert(0, str(ROOT / "tests" / "unit"))
    import test_tcp_tshark as scen  # the privileged tests' traffic makers

    from rawlab.lab.netns import Lab

    # the scenario drops every Nth segment at the receiver (not a random 1/N: see
    # test_tcp_tshark.make_capture); N = 100 / the percent asked for
    every = max(2, round(100 / loss))
    sc = ("bench", 4, 96, every, scen.transfer, {"size": size})
    with Lab() as lab:
        scen.make_capture(lab, sc, out)


def replicate(pattern: Path, out: Path, target: int) -> int:
    """Copies of the pattern's packets, client port +1 and time shifted per copy."""
    from rawlab.pcap.reader import open_file
    from rawlab.pcap.writer import PcapWriter

    with open_file(pattern) as cap:
        recs = [(r.ts_ns, r.data, r.wirelen, r.linktype) for r in cap]
    if not recs:
        raise SystemExit("the pattern capture is empty")
    span = recs[-1][0] - recs[0][0] + 10**9
    n = 0
    copy = 0
    with PcapWriter(out, recs[0][3], snaplen=96, buffer_bytes=1 << 20) as w:
        while n < target:
            for ts, data, wirelen, _ in recs:
                b = bytearray(data)
                ihl = (b[14] & 15) * 4
                t = 14 + ihl
                sport, dport = struct.unpack_from("!HH", b, t)
                if dport == PORT:
                    struct.pack_into("!H", b, t, (sport + copy) & 0xFFFF or 1)
                else:
                    struct.pack_into("!H", b, t + 2, (dport + copy) & 0xFFFF or 1)
                w.write(ts + copy * span, bytes(b), wirelen)
                n += 1
                if n >= target:
                    break
            copy += 1
    return n


def count_records(path: Path) -> int:
    """The number of records of a capture file."""
    from rawlab.pcap.reader import open_file

    with open_file(path) as cap:
        return sum(1 for _ in cap)


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run. (Not its peak RSS: the
    child's ru_maxrss counts the forked Python's pages before exec; `/usr/bin/time -f %M`
    measures that.)"""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise subprocess.CalledProcessError(p.returncode, cmd)
    return wall, ru.ru_utime + ru.ru_stime


def scapy_rate(path: Path, count: int) -> tuple[int, float]:
    code = f"""
import time, logging
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import sniff
from scapy.sessions import TCPSession
t = time.perf_counter()
pkts = sniff(offline={str(path)!r}, session=TCPSession, count={count}, store=False)
print(time.perf_counter() - t)
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    return count, float(out[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=550_000)
    ap.add_argument("--scapy-packets", type=int, default=20_000)
    ap.add_argument("--size", type=int, default=60_000_000, help="bytes in the recorded flow")
    ap.add_argument("--loss", type=int, default=2, help="percent dropped at the receiver")
    ap.add_argument("--keep", type=Path, help="keep the benchmark capture here")
    ap.add_argument("--pattern", type=Path, help="use this capture as the flow pattern")
    ap.add_argument("--capture", type=Path, help="time this capture as it is (no recording)")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved runs of each pair")
    ap.add_argument("--no-scapy", action="store_true", help="skip the scapy row")
    ap.add_argument("--table-only", action="store_true",
                    help="only the connection table against tcptrace (for 5M packets and "
                         "more, where tshark and --json take minutes)")
    args = ap.parse_args()
    rawlab = shutil.which("rawlab", path=str(Path(sys.executable).parent)) or "rawlab"
    with tempfile.TemporaryDirectory(prefix="rawlab-bench-tcp-") as tmp:
        if args.capture:
            cap = args.capture
            n = count_records(cap)
        else:
            pattern = args.pattern or Path(tmp) / "pattern.pcap"
            t = time.perf_counter()
            if not args.pattern:
                if os.geteuid() != 0:
                    raise SystemExit("recording the pattern needs root (or pass --pattern "
                                     "FILE)")
                record_pattern(pattern, args.size, args.loss)
            cap = args.keep or Path(tmp) / "bench.pcap"
            n = replicate(pattern, cap, args.packets)
            print(f"capture: {n} packets, {cap.stat().st_size / 1e6:.1f} MB "
                  f"(made in {time.perf_counter() - t:.1f} s)")
        pairs = [("rawlab tcp (table)", [rawlab, "tcp", str(cap)]),
                 ("tcptrace -l", ["tcptrace", "-l", str(cap)])]
        if not args.table_only:
            pairs += [("rawlab tcp --json", [rawlab, "tcp", "--json", str(cap)]),
                      ("tshark -T fields tcp.analysis.flags",
                       ["tshark", "-n", "-r", str(cap), "-T", "fields", "-e", "frame.number",
                        "-e", "tcp.analysis.flags"])]
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in pairs}
        for _ in range(args.rounds):
            for name, cmd in pairs:
                runs[name].append(timed(cmd))
        best = {name: (min(r[0] for r in v), min(r[1] for r in v)) for name, v in runs.items()}
        rows = [(name, n / w, w, f"  {cpu:6.2f} s CPU") for name, (w, cpu) in best.items()]
        if not args.no_scapy and not args.table_only:
            sc_n, sc_t = scapy_rate(cap, min(args.scapy_packets, n))
            rows.append(("scapy sniff(session=TCPSession)", sc_n / sc_t, sc_t * n / sc_n,
                         f"  (measured on {sc_n} packets in {sc_t:.1f} s, extrapolated)"))
        print(f"{'tool':38} {'packets/s':>12} {'seconds':>9}  (best of {args.rounds}, "
              "wall and CPU each)")
        for name, rate, sec, note in rows:
            print(f"{name:38} {rate:12,.0f} {sec:9.2f}{note}")
        table, peer = best["rawlab tcp (table)"], best["tcptrace -l"]
        line = (f"rawlab tcp (table) is {peer[0] / table[0]:.2f}x tcptrace -l "
                f"({peer[1] / table[1]:.2f}x in CPU)")
        if not args.table_only:
            rate = {name: r for name, r, _, _ in rows}
            js = rate["rawlab tcp --json"]
            line += (f"; rawlab tcp --json is "
                     f"{js / rate['tshark -T fields tcp.analysis.flags']:.2f}x tshark"
                     + (f", {js / rate[rows[-1][0]]:.1f}x scapy" if not args.no_scapy else ""))
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
