"""`rawlab netlink sockets` with ss's fingers: filter expressions run by the kernel (the same
sockets as `ss` with the same filter), -o timers, -e, -m, -s."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rawlab.lab.netns import Lab, Netns

RAWLAB = str(Path(sys.executable).with_name("rawlab"))

SERVE = """
import socket, sys, time
socks = []
for port in (22, 80, 443, 8080):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(); socks.append(s)
conns = []
for port, src in ((22, 40022), (80, 40080), (443, 40443), (8080, 48080)):
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    c.bind(("127.0.0.2", src)); c.connect(("127.0.0.1", port)); conns.append(c)
    conns.append(socks[[22, 80, 443, 8080].index(port)].accept()[0])
print("ready", flush=True)
time.sleep(60)
"""

FILTERS = [
    ["sport", "=", ":22"],
    ["dport", "=", ":443"],
    ["dport", "!=", ":443"],
    ["dst", "127.0.0.1"],
    ["src", "127.0.0.2/32"],
    ["dst", "10.0.0.0/8"],
    ["dport", ">=", ":1024"],
    ["sport", "<", ":1024"],
    ["dport", "gt", ":80"],
    ["(", "dport", "=", ":22", "or", "dport", "=", ":80", ")"],
    ["src", "127.0.0.2", "and", "not", "dport", "=", ":22"],
    ["dst", "127.0.0.1:8080"],
    ["state", "established", "(", "sport", "=", ":443", "or", "dport", "=", ":443", ")"],
    ["state", "listening", "sport", "le", ":80"],
    ["exclude", "listening", "sport", "ge", ":443"],
]


@pytest.fixture(scope="module")
def served() -> Iterator[Netns]:
    with Lab() as lab:
        yield from _serve(lab)


def _serve(lab: Lab) -> Iterator[Netns]:
    ns = lab.netns("ssf")
    subprocess.run(["ip", "-n", ns.name, "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "-n", ns.name, "addr", "add", "127.0.0.2/8", "dev", "lo"], check=False)
    p = subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-c", SERVE],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    try:
        yield ns
    finally:
        p.kill()
        p.wait()


def pairs(text: str) -> set[tuple[str, str]]:
    """(local, peer) of each line; the columns found by the header (ss leaves out State
    when one state was asked for)."""
    lines = text.splitlines()
    local = lines[0].split().index("Local") if lines else 0
    out = set()
    for line in lines[1:]:
        f = line.split()
        if len(f) > local + 1:
            out.add((f[local], f[local + 1]))
    return out


@pytest.mark.parametrize("expr", FILTERS, ids=" ".join)
def test_a_filter_selects_what_ss_selects(served: Netns, expr: list[str]) -> None:
    states = [] if expr[0] in ("state", "exclude") else ["state", "all"]
    mine = subprocess.run([RAWLAB, "netlink", "sockets", "-tn", "--netns", served.name,
                           "--", *states, *expr], capture_output=True, text=True, timeout=60,
                          check=False)
    assert mine.returncode == 0, mine.stderr
    theirs = subprocess.run(["ip", "netns", "exec", served.name, "ss", "-tn", *states, *expr],
                            capture_output=True, text=True, check=True).stdout
    got, want = pairs(mine.stdout), pairs(theirs)
    assert got == want and (got or expr[-1] == "10.0.0.0/8"), (got, want)


def test_a_filter_ss_cannot_read_is_a_usage_error(served: Netns) -> None:
    for expr in (["dport", "=", ":ssh"], ["(", "sport", "=", ":22"], ["bogus"],
                 ["src", "=", "not-an-address"]):
        p = subprocess.run([RAWLAB, "netlink", "sockets", "--netns", served.name, "--", *expr],
                           capture_output=True, text=True, timeout=60, check=False)
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and "ss filter" in p.stderr


def _global_tcp() -> tuple[str, str]:
    """/proc/net/sockstat's machine-wide TCP counters: orphan and alloc."""
    with open("/proc/net/sockstat") as f:
        words = next(x for x in f if x.startswith("TCP:")).split()
    return words[words.index("orphan") + 1], words[words.index("alloc") + 1]


def test_timers_extended_memory_and_summary_as_ss_prints_them(served: Netns) -> None:
    p = subprocess.run([RAWLAB, "netlink", "sockets", "-tnoem", "--netns", served.name,
                        "--", "dport", "=", ":22"], capture_output=True, text=True,
                       timeout=60, check=True)
    lines = p.stdout.splitlines()
    assert "timer:(keepalive," in lines[1] and " ino:" in lines[1] and " sk:" in lines[1]
    assert lines[2].startswith("\t skmem:(r") and ",rb" in lines[2]
    ss = subprocess.run(["ip", "netns", "exec", served.name, "ss", "-tnoe", "dport", "=",
                         ":22"], capture_output=True, text=True, check=True).stdout
    assert "timer:(keepalive," in ss
    for _attempt in range(5):
        # ss's TCP line takes "alloc" (and orphans) from counters of the whole machine: a
        # socket opened or closed elsewhere between the two reads changes it; read again
        before = _global_tcp()
        mine = subprocess.run([RAWLAB, "netlink", "sockets", "-s", "--netns", served.name],
                              capture_output=True, text=True, timeout=60, check=True).stdout
        theirs = subprocess.run(["ip", "netns", "exec", served.name, "ss", "-s"],
                                capture_output=True, text=True, check=True).stdout
        if mine.splitlines()[1:] == theirs.splitlines()[1:] or _global_tcp() == before:
            break
    assert mine.splitlines()[1:] == theirs.splitlines()[1:]  # Total counts every namespace's
    assert "(estab 8, " in mine and "TCP\t  12        12        0" in mine
