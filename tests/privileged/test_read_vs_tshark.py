"""rawlab's JSON agrees field for field with tshark on captures of real traffic
between two namespaces: a TCP handshake + data + FIN, UDP, ICMP echo, IPv6 TCP
and ARP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rawlab.lab import traffic
from rawlab.lab.netns import Lab

RAWLAB = str(Path(sys.executable).with_name("rawlab"))

# (tshark field, path into rawlab's JSON, how to turn tshark's text into ours)
FIELDS = [
    ("eth.src", ("eth", "src"), str),
    ("eth.dst", ("eth", "dst"), str),
    ("eth.type", ("eth", "type"), lambda s: int(s, 16)),
    ("ip.src", ("ipv4", "src"), str),
    ("ip.dst", ("ipv4", "dst"), str),
    ("ip.ttl", ("ipv4", "ttl"), int),
    ("ip.id", ("ipv4", "id"), lambda s: int(s, 16)),
    ("ip.len", ("ipv4", "total_length"), int),
    ("ip.checksum", ("ipv4", "checksum"), lambda s: int(s, 16)),
    ("ip.proto", ("ipv4", "proto"), int),
    ("ipv6.src", ("ipv6", "src"), str),
    ("ipv6.dst", ("ipv6", "dst"), str),
    ("ipv6.plen", ("ipv6", "payload_length"), int),
    ("ipv6.nxt", ("ipv6", "next_header"), int),
    ("ipv6.hlim", ("ipv6", "hop_limit"), int),
    ("ipv6.flow", ("ipv6", "flow_label"), lambda s: int(s, 16)),
    ("tcp.srcport", ("tcp", "sport"), int),
    ("tcp.dstport", ("tcp", "dport"), int),
    ("tcp.seq_raw", ("tcp", "seq"), int),
    ("tcp.ack_raw", ("tcp", "ack"), int),
    ("tcp.flags", ("tcp", "flags_int"), lambda s: int(s, 16)),
    ("tcp.window_size_value", ("tcp", "window"), int),
    ("tcp.checksum", ("tcp", "checksum"), lambda s: int(s, 16)),
    ("tcp.len", ("tcp", "len"), int),
    ("tcp.options.mss_val", ("tcp", "options", "mss"), int),
    ("tcp.options.wscale.shift", ("tcp", "options", "wscale"), int),
    ("tcp.options.timestamp.tsval", ("tcp", "options", "tsval"), int),
    ("udp.srcport", ("udp", "sport"), int),
    ("udp.dstport", ("udp", "dport"), int),
    ("udp.length", ("udp", "length"), int),
    ("udp.checksum", ("udp", "checksum"), lambda s: int(s, 16)),
    ("icmp.type", ("icmp", "type"), int),
    ("icmp.code", ("icmp", "code"), int),
    ("icmp.checksum", ("icmp", "checksum"), lambda s: int(s, 16)),
    ("icmp.ident", ("icmp", "ident"), int),
    ("icmp.seq", ("icmp", "seq"), int),
    ("arp.opcode", ("arp", "op"), int),
    ("arp.src.hw_mac", ("arp", "sha"), str),
    ("arp.src.proto_ipv4", ("arp", "spa"), str),
    ("arp.dst.proto_ipv4", ("arp", "tpa"), str),
]


def ours(rec: dict, path: tuple[str, ...]) -> object:
    layer = rec.get(path[0])
    if layer is None:
        return None
    if path[1] == "options":
        for o in layer["options"]:
            if path[2] == "mss" and o["name"] == "mss":
                return o["value"]
            if path[2] == "wscale" and o["name"] == "wscale":
                return o["value"]
            if path[2] == "tsval" and o["name"] == "timestamp":
                return o["tsval"]
        return None
    if path[0] == "icmp" and path[1] in ("ident", "seq"):
        rest = layer["rest"]
        return rest >> 16 if path[1] == "ident" else rest & 0xFFFF
    return layer.get(path[1])


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cap") / "mixed.pcapng"
    with Lab() as lab:
        a, b = lab.netns("a"), lab.netns("b")
        lab.veth(a, b, "10.77.0.1/24", "10.77.0.2/24", offloads=False,
                 extra_addrs=(("fd00:77::1/64", "fd00:77::2/64"),))
        with traffic.tcpdump(a, "veth0", path):
            traffic.ping(a, "10.77.0.2", 2)  # ARP first, then ICMP echo
            ex = traffic.tcp_exchange(b, a, "10.77.0.2", 8080, b"hello " * 300,
                                      b"world " * 50, chunk=500)
            assert not ex.errors and ex.server_got == b"hello " * 300
            assert traffic.udp_send(a, b, "10.77.0.2", 5353, b"datagram") == b"datagram"
            ex6 = traffic.tcp_exchange(b, a, "fd00:77::2", 8081, b"six", b"xis")
            assert not ex6.errors and ex6.client_got == b"xis"
    return path


def test_every_field_agrees_with_tshark(capture: Path) -> None:
    recs = [json.loads(x) for x in subprocess.run(
        [RAWLAB, "read", str(capture), "--json"], capture_output=True, text=True,
        check=True).stdout.splitlines()]
    argv = ["tshark", "-r", str(capture), "-T", "fields", "-E", "separator=|",
            "-E", "occurrence=f", "-e", "frame.number", "-e", "frame.len",
            "-e", "frame.cap_len"]
    for f, _, _ in FIELDS:
        argv += ["-e", f]
    rows = [line.split("|") for line in subprocess.run(
        argv, capture_output=True, text=True, check=True).stdout.splitlines()]
    assert len(rows) == len(recs) > 20
    seen = {"tcp": 0, "udp": 0, "icmp": 0, "arp": 0, "ipv6": 0}
    compared = 0
    for rec, row in zip(recs, rows, strict=True):
        assert rec["frame"] == int(row[0])
        assert rec["len"] == int(row[1]) and rec["caplen"] == int(row[2])
        for k in seen:
            seen[k] += k in rec
        for (fname, path, conv), text in zip(FIELDS, row[3:], strict=True):
            mine = ours(rec, path)
            if text == "":
                assert mine is None or (path[0] == "ipv6" and path[1] == "flow_label") \
                    or fname.startswith("tcp.options"), (rec["frame"], fname, mine)
                continue
            assert mine == conv(text), (rec["frame"], fname, mine, text)
            compared += 1
    assert all(seen.values()), seen
    assert compared > 500


def test_checksums_are_good_with_offloads_off(capture: Path) -> None:
    recs = [json.loads(x) for x in subprocess.run(
        [RAWLAB, "read", str(capture), "--json"], capture_output=True, text=True,
        check=True).stdout.splitlines()]
    for rec in recs:
        for layer in ("ipv4", "tcp", "udp", "icmp", "icmpv6"):
            if layer in rec:
                assert rec[layer]["checksum_status"] == "good", (rec["frame"], layer)


def test_stats_counts_match_tshark(capture: Path) -> None:
    out = subprocess.run([RAWLAB, "read", str(capture), "--stats"], capture_output=True,
                         text=True, check=True).stdout
    phs = subprocess.run(["tshark", "-r", str(capture), "-q", "-z", "io,phs"],
                         capture_output=True, text=True, check=True).stdout

    def frames(text: str, name: str) -> int:
        for line in text.splitlines():
            if line.strip().startswith(name + " "):
                return int(line.split("frames:")[1].split()[0])
        raise AssertionError(f"{name} not in {text}")

    assert frames(out, "eth") == frames(phs, "eth")
    assert frames(out, "ipv4") == frames(phs, "ip")
    assert frames(out, "ipv6") == frames(phs, "ipv6")
    assert frames(out, "tcp") == frames(phs, "tcp")
    assert frames(out, "arp") == frames(phs, "arp")
