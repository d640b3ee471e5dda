"""bench/fuzz: hostile input as a standing check — mutated real captures through every
reader and decoder; any exception other than rawlab's expected failure is a crash.

    .venv/bin/python bench/fuzz/run.py [--cases 20000] [--seconds 600] [--seed 1]

Takes the captures in captures/ and the tcpdump test corpus (../shared/corpus, when
present) as seeds, mutates each (bit flips, byte runs, truncation, splices of two
files, lying length fields), and for every mutant: reads it with the pcap/pcapng
reader, decodes each record (views, checksums, the line, the -v tree, NDJSON through
json.dumps), feeds the TCP analyser both ways (feed_bytes and feed), and decodes
netlink messages (the wire walk, rtnl, genl, sock_diag) from the records' bytes.
RawlabError (a clear one-line failure) is expected; anything else is counted by the
place it was raised (file:line and exception type) and printed at the end. Runs under
a 600 MB address-space cap. Exit 1 if any crash was found.

tests/unit/test_fuzz_standing.py runs a short version of the same loop.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import random
import resource
import struct
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "tcpdump-tests"


def seeds(limit_bytes: int = 200_000) -> list[bytes]:
    files = sorted((ROOT / "captures").glob("*.pcap*"))
    if CORPUS.is_dir():
        files += sorted(CORPUS.glob("*.pcap*"))
    out = []
    for f in files:
        b = f.read_bytes()
        if len(b) <= limit_bytes:
            out.append(b)
    return out


def mutate(rnd: random.Random, blob: bytes, other: bytes) -> bytes:
    b = bytearray(blob)
    for _ in range(rnd.choice((1, 1, 2, 4, 16))):
        kind = rnd.random()
        if not b:
            break
        i = rnd.randrange(len(b))
        if kind < 0.35:
            b[i] ^= 1 << rnd.randrange(8)
        elif kind < 0.55:
            b[i:i + 4] = rnd.choice((b"\xff\xff\xff\xff", b"\x00\x00\x00\x00",
                                     struct.pack("<I", rnd.randrange(1 << 32))))
        elif kind < 0.7:
            del b[rnd.randrange(len(b)):]
        elif kind < 0.85:
            j = rnd.randrange(len(other)) if other else 0
            b[i:] = other[j:j + rnd.randrange(1, 4096)] + bytes(b[i:])
        else:
            b[i:i + rnd.randrange(1, 64)] = bytes(rnd.randrange(256)
                                                  for _ in range(rnd.randrange(1, 64)))
    return bytes(b)


_DIAG = (("tcp", 6), ("udp", 17), ("unix", 0), ("vsock", 0), ("netlink", 0), ("packet", 0))


def exercise(blob: bytes) -> None:
    """Everything rawlab does with a file's bytes (expected failures are RawlabError)."""
    from rawlab.analysis.tcp import TcpAnalyzer
    from rawlab.decode import genl, rtnl, sock_diag
    from rawlab.decode.dispatch import Decoder
    from rawlab.errors import RawlabError
    from rawlab.pcap.reader import read_records
    from rawlab.present.packet import LineSink, line, packet_json, tree
    from rawlab.sockets import netlink_wire
    from rawlab.sockets.diag import DiagDump

    dec = Decoder()
    fast, slow = TcpAnalyzer(), TcpAnalyzer()
    sink = LineSink(io.StringIO())
    try:
        for frame, rec in enumerate(read_records(io.BytesIO(blob)), 1):
            pkt = dec.decode(rec.data, rec.linktype)
            line(frame, rec, pkt)
            sink.packet(frame, rec, pkt, None)
            list(tree(frame, rec, pkt, 0))
            json.dumps(packet_json(frame, rec, pkt, 0))
            dec.path(rec.data, rec.linktype)
            fast.feed_bytes(frame, rec.ts_ns, rec.data, rec.linktype, rec.csum_status)
            slow.feed(frame, rec.ts_ns, pkt)
            data = rec.data[16:] if rec.linktype == 253 else rec.data
            msgs = list(netlink_wire.messages(data))
            for m in msgs:
                rtnl.decode(m)
            genl.families_of(msgs)
            sock_diag.sockets_of([DiagDump(kind, proto, msgs) for kind, proto in _DIAG])
            if frame > 5000:
                break
        fast.finish()
        slow.finish()
    except RawlabError:
        pass


def where(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in tb if "/rawlab/" in f.filename] or tb
    f = frames[-1]
    return f"{type(exc).__name__} at {Path(f.filename).name}:{f.lineno} ({f.name})"


def fuzz(cases: int, seconds: float, seed: int) -> tuple[int, collections.Counter[str],
                                                         dict[str, str]]:
    rnd = random.Random(seed)
    pool = seeds()
    crashes: collections.Counter[str] = collections.Counter()
    first: dict[str, str] = {}
    end = time.monotonic() + seconds
    n = 0
    for n in range(1, cases + 1):  # noqa: B007 - n is the count done
        if time.monotonic() > end:
            break
        blob = mutate(rnd, rnd.choice(pool), rnd.choice(pool))
        try:
            exercise(blob)
        except Exception as exc:  # a crash: anything but the expected RawlabError
            key = where(exc)
            crashes[key] += 1
            first.setdefault(key, f"{exc!s:.200}")
    return n, crashes, first


def cap_memory(mb: int = 600) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    cap_memory()
    t0 = time.monotonic()
    n, crashes, first = fuzz(a.cases, a.seconds, a.seed)
    print(f"{n} mutated captures in {time.monotonic() - t0:.0f} s, "
          f"{sum(crashes.values())} crashes at {len(crashes)} places")
    for key, count in crashes.most_common():
        print(f"  {count:6d}  {key}: {first[key]}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
