"""bench/read: `rawlab read --stats` vs a dpkt loop vs scapy's PcapReader; `rawlab read`
(one line a packet) vs `tcpdump -nn -r` and `tshark -n -r`; `rawlab read --json` vs
`tshark -T ek`: same file, one run.

    .venv/bin/python bench/read/run.py [--packets 500000] [--scapy-packets 30000] [--no-lines]
                                       [--rounds N] [--no-stats] [--offload]

Builds a pcap of Ethernet/IPv4/TCP segments (checksums filled in, ports no peer
names an application on) (a few UDP and ARP frames mixed
in, sizes 54-1514 bytes), then decodes every packet down to its transport
layer and counts the protocol hierarchy with each tool. rawlab runs as the
real command (process start included); dpkt and scapy run in this process.
scapy is timed on the first --scapy-packets packets and extrapolated (it is
~100x slower; the whole file would take minutes). Prints packets/s and ratios.
Both tools also run with ``TZ=:/etc/localtime``: with TZ unset (Debian's default) glibc's
localtime() stat()s /etc/localtime on every call, once per line tcpdump prints (about 2/3
of its time); with TZ set tcpdump is ~3x faster, rawlab unchanged.
``--offload`` adds rawlab and tcpdump on the same packets as their sender's own capture
holds them when the NIC computes the checksums (each field the pseudo-header's sum:
tcpdump prints nothing about it, rawlab's columns print those rows too).
"""

from __future__ import annotations

import argparse
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rawlab.decode.checksum import inet_checksum, pseudo_header_v4

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def _with_checksum(l4: bytes, proto: int, src: bytes, dst: bytes,
                   offload: bool = False) -> bytes:
    """The segment with its checksum filled in (as a real stack sends it), or with
    `offload` as the sender's own capture holds it when the NIC computes it: the
    pseudo-header's sum (CHECKSUM_PARTIAL)."""
    at = 16 if proto == 6 else 6
    pseudo = pseudo_header_v4(src, dst, proto, len(l4))
    value = pseudo if offload else inet_checksum(l4, pseudo)
    return l4[:at] + struct.pack("!H", value) + l4[at + 2:]


def build(path: Path, n: int, offload: bool = False) -> None:
    rnd = random.Random(1)
    eth = bytes.fromhex("020000000002020000000001")
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for i in range(n):
            kind = rnd.random()
            if kind < 0.02:  # ARP
                frame = eth + b"\x08\x06" + bytes.fromhex(
                    "0001080006040001020000000001c0a80001000000000000c0a80002") + bytes(18)
            else:
                plen = rnd.choice((0, 0, 0, 100, 536, 1460))
                if kind < 0.10:  # UDP
                    l4 = struct.pack("!HHHH", 40000, 5004, 8 + plen, 0) + bytes(plen)
                    proto = 17
                else:
                    l4 = struct.pack("!HHIIBBHHH", 40000 + i % 500, 5001, i * 1460 & 0xFFFFFFFF,
                                     7, 0x50, 0x18, 502, 0, 0) + bytes(plen)
                    proto = 6
                src, dst = bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2))
                l4 = _with_checksum(l4, proto, src, dst, offload)
                ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), i & 0xFFFF, 0x4000,
                                 64, proto, 0, src, dst)
                ip = ip[:10] + struct.pack("!H", inet_checksum(ip)) + ip[12:]
                frame = eth + b"\x08\x00" + ip + l4
            f.write(struct.pack("<IIII", 1_700_000_000 + i // 1000, i % 1000 * 1000,
                                len(frame), len(frame)))
            f.write(frame)


def run_rawlab(path: Path) -> tuple[float, int]:
    t = time.perf_counter()
    out = subprocess.run([RAWLAB, "read", "--stats", str(path)], capture_output=True,
                         text=True, check=True).stdout
    dt = time.perf_counter() - t
    n = int(next(line for line in out.splitlines() if line.startswith("eth ")
                 ).split("frames:")[1].split()[0])
    return dt, n


def timed(cmd: list[str]) -> float:
    """Seconds for `cmd`, its output thrown away (process start included)."""
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def line_rows(path: Path, n: int, rounds: int = 1, offloaded: Path | None = None
              ) -> list[tuple[str, int, float, str]]:
    """The one-line view and NDJSON: rawlab against tcpdump and tshark, same file; with
    `rounds` > 1 the tools take turns and each keeps its best time (a loaded machine
    slows whichever runs while the load peaks). `offloaded`: the same packets with the
    checksums an offloading sender's capture holds, rawlab and tcpdump again."""
    cmds = [("rawlab read", [RAWLAB, "read", str(path)]),
            ("tcpdump -nn -r", ["tcpdump", "-nn", "-r", str(path)]),
            ("tshark -n -r", ["tshark", "-n", "-r", str(path)]),
            ("rawlab read --json", [RAWLAB, "read", "--json", str(path)]),
            ("tshark -T ek", ["tshark", "-n", "-r", str(path), "-T", "ek"])]
    # TZ unset (Debian's default), glibc's localtime() stat()s /etc/localtime on every
    # call: tcpdump makes one such system call per line it prints (strace -c: 500,048
    # newfstatat for 500k packets, ~2/3 of its time). With TZ set it does not.
    tz = ["env", "TZ=:/etc/localtime"]
    cmds += [("rawlab read, TZ set", [*tz, RAWLAB, "read", str(path)]),
             ("tcpdump, TZ set", [*tz, "tcpdump", "-nn", "-r", str(path)])]
    if offloaded is not None:
        cmds += [("rawlab read, offload", [RAWLAB, "read", str(offloaded)]),
                 ("tcpdump, offload", ["tcpdump", "-nn", "-r", str(offloaded)])]
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, cmd in cmds:
            if name.startswith("tshark") and name in best and rounds > 1 and \
                    best[name] > 10 * best.get("tcpdump -nn -r", 1e9):
                continue  # tshark is far behind: once is enough
            t = timed(cmd)
            best[name] = min(best.get(name, t), t)
    return [(name, n, best[name], "") for name, _ in cmds]


def run_dpkt(path: Path) -> tuple[float, int]:
    import dpkt

    counts: dict[tuple[str, ...], int] = {}
    t = time.perf_counter()
    n = 0
    with path.open("rb") as f:
        for _ts, buf in dpkt.pcap.Reader(f):
            n += 1
            e = dpkt.ethernet.Ethernet(buf)
            p = e.data
            if isinstance(p, dpkt.ip.IP):
                q = p.data
                key = ("eth", "ipv4", "tcp" if isinstance(q, dpkt.tcp.TCP) else
                       "udp" if isinstance(q, dpkt.udp.UDP) else "data")
            elif isinstance(p, dpkt.arp.ARP):
                key = ("eth", "arp")
            else:
                key = ("eth",)
            counts[key] = counts.get(key, 0) + 1
    return time.perf_counter() - t, n


def run_scapy(path: Path, limit: int) -> tuple[float, int]:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import ARP
    from scapy.utils import PcapReader

    counts: dict[tuple[str, ...], int] = {}
    t = time.perf_counter()
    n = 0
    with PcapReader(str(path)) as r:
        for pkt in r:
            n += 1
            key = ("eth", "ipv4", "tcp") if TCP in pkt else ("eth", "ipv4", "udp") \
                if UDP in pkt else ("eth", "arp") if ARP in pkt else \
                ("eth", "ipv4") if IP in pkt else ("eth",)
            counts[key] = counts.get(key, 0) + 1
            if n >= limit:
                break
    return time.perf_counter() - t, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=500_000)
    ap.add_argument("--scapy-packets", type=int, default=30_000)
    ap.add_argument("--no-lines", dest="lines", action="store_false",
                    help="skip the one-line and NDJSON rows (tcpdump, tshark)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="line rows: tools take turns N times, best time each")
    ap.add_argument("--no-stats", dest="stats", action="store_false",
                    help="skip the --stats / dpkt / scapy rows")
    ap.add_argument("--offload", action="store_true",
                    help="line rows also on the same packets with the checksums a sender's "
                         "own capture holds when its NIC computes them (pseudo-header sums)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rawlab-bench-") as tmp:
        path = Path(tmp) / "tcp.pcap"
        build(path, args.packets)
        size = os.path.getsize(path)
        print(f"input: {args.packets} packets, {size / 1e6:.0f} MB (Ethernet/IPv4/TCP, "
              "some UDP and ARP)")
        rows = []
        if args.stats:
            dt, n = run_rawlab(path)
            assert n == args.packets, n
            rows.append(("rawlab read --stats", n, dt, ""))
            dt, n = run_dpkt(path)
            rows.append(("dpkt loop", n, dt, ""))
            dt, n = run_scapy(path, args.scapy_packets)
            rows.append(("scapy PcapReader", n, dt, f" (first {n}, extrapolated)"))
        offloaded = None
        if args.lines and args.offload:
            offloaded = Path(tmp) / "offload.pcap"
            build(offloaded, args.packets, offload=True)
        lines = line_rows(path, args.packets, args.rounds, offloaded) if args.lines else []
    if rows:
        base = rows[0][1] / rows[0][2]
        print(f"{'tool':<22}{'packets':>10}{'seconds':>10}{'pkt/s':>12}  rawlab is")
        for name, n, dt, note in rows:
            rate = n / dt
            ratio = "" if name.startswith("rawlab") else f"{base / rate:.1f}x faster"
            print(f"{name:<22}{n:>10}{dt:>10.2f}{rate:>12,.0f}  {ratio}{note}")
    if lines:
        rate = {name: n / dt for name, n, dt, _ in lines}
        td = rate["tcpdump -nn -r"]
        print(f"\n{'one line a packet':<22}{'packets':>10}{'seconds':>10}{'pkt/s':>12}  "
              f"x tcpdump's line rate (best of {args.rounds})")
        for name, n, dt, _ in lines:
            print(f"{name:<22}{n:>10}{dt:>10.2f}{rate[name]:>12,.0f}  {rate[name] / td:.2f}x")
        tzr = rate["rawlab read, TZ set"] / rate["tcpdump, TZ set"]
        print(f"TZ set: rawlab read is {tzr:.2f}x tcpdump -nn -r (tcpdump without a stat() "
              "of /etc/localtime a packet)")
        if "tcpdump, offload" in rate:
            off = rate["rawlab read, offload"] / rate["tcpdump, offload"]
            print(f"offload: rawlab read is {off:.2f}x tcpdump -nn -r on the same packets as "
                  "their sender captured them")
        print(f"rawlab read is {rate['rawlab read'] / rate['tshark -n -r']:.2f}x tshark -n -r; "
              f"rawlab read --json is {rate['rawlab read --json'] / rate['tshark -T ek']:.2f}x "
              "tshark -T ek")


if __name__ == "__main__":
    main()
