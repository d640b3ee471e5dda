"""`rawlab raw listen`: what a SOCK_RAW socket gets, and what it does not (the findings
written in the command's --help and docs/json.md).

Gets: copies of incoming TCP for a port a real socket owns; incoming ICMP echo requests
the kernel answers itself; IPv6 without its header (rebuilt by rawlab).
Does not get: outgoing packets (the kernel's SYN-ACK, its echo reply, our own request);
packets dropped by the input firewall (AF_PACKET does see those); anything on an
IPPROTO_RAW socket.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _pairs import pair

from rawlab.decode.dispatch import Decoder
from rawlab.lab import traffic
from rawlab.raw.listen import open_listener, receive
from rawlab.raw.sock import Received
from rawlab.sockets.packet import RingConfig, open_ring

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def listening(ns: Any, family: int, proto: int, make_traffic: Callable[[], None],
              duration: float = 0.3) -> list[Received]:
    """What a raw socket in `ns` receives while `make_traffic` runs: the socket is open
    before the traffic starts and queues what comes; read after it, for `duration` more."""
    with open_listener(family, proto, ns.name) as sock:
        make_traffic()
        return list(receive(sock, duration=duration))


def tcp_flags(r: Received) -> tuple[str, int, int]:
    pkt = Decoder().decode(r.data, r.record().linktype)
    ip = pkt.layer("ipv4") or pkt.layer("ipv6")
    t = pkt["tcp"]
    return socket.inet_ntop(socket.AF_INET6 if len(ip.src) == 16 else socket.AF_INET,
                            bytes(ip.src)), t.dport, t.flags


def test_tcp_copies_of_incoming_only(lab: Any) -> None:
    a, b = pair(lab)
    got = listening(b, socket.AF_INET, 6, lambda: traffic.tcp_exchange(
        b, a, "10.0.0.2", 7000, b"hello", b"world", timeout=3))
    seen = [tcp_flags(r) for r in got]
    # the client's SYN, ACK, data and FIN reached the raw socket although a real
    # socket owns port 7000 (and answered them) ...
    assert seen and all(src == "10.0.0.1" and dport == 7000 for src, dport, _ in seen)
    flags = [f for _, _, f in seen]
    assert flags[0] == 0x02 and any(f & 0x01 for f in flags)
    dec = Decoder()
    assert any(bytes(dec.decode(r.data, 101)["tcp"].payload) == b"hello" for r in got)
    assert all(dec.decode(r.data, 101).checksum("tcp").verdict.value == "good" for r in got)
    assert all(r.ifname == "veth1" and not r.rebuilt for r in got)
    # ... but none of b's own segments (its SYN-ACK, its data "world"): outgoing
    assert not any(src == "10.0.0.2" for src, _, _ in seen)


def test_icmp_sees_requests_not_the_kernels_replies_nor_own_requests(lab: Any) -> None:
    a, b = pair(lab)
    got = listening(b, socket.AF_INET, 1, lambda: (
        a.run(["ping", "-c", "1", "-W", "1", "10.0.0.2"]),   # b's kernel answers
        b.run(["ping", "-c", "1", "-W", "1", "10.0.0.1"])))  # b asks
    types = sorted((r.src, r.payload[0]) for r in got)
    # a's request to b (8) and a's reply to b's request (0); not b's reply nor b's request
    assert types == [("10.0.0.1", 0), ("10.0.0.1", 8)]


def test_ipv6_header_is_rebuilt(lab: Any) -> None:
    a, b = pair(lab)
    got = listening(b, socket.AF_INET6, 58, lambda: a.run(
        ["ping", "-c", "1", "-W", "1", "-t", "9", "fd00::2"]))
    echo = [r for r in got if r.payload[0] == 128]
    assert len(echo) == 1
    pkt = Decoder().decode(echo[0].data, 101)
    ip = pkt["ipv6"]
    assert echo[0].rebuilt and ip.hop_limit == 9 and ip.payload_length == len(echo[0].payload)
    assert socket.inet_ntop(socket.AF_INET6, bytes(ip.dst)) == "fd00::2"
    assert pkt.checksum("icmpv6").verdict.value == "good"


def test_input_firewall_drops_hide_packets_from_raw_but_not_af_packet(lab: Any) -> None:
    a, b = pair(lab)
    b.run(["nft", "-f", "-"], input="table inet t {\n chain input {\n type filter hook input "
          "priority 0;\n udp dport 7001 drop\n }\n}\n")
    ring = open_ring("veth1", netns=b.name, bpf="udp", config=RingConfig(ring_mb=2))

    def send() -> None:
        with a.entered():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s:
            s.sendto(b"dropped", ("10.0.0.2", 7001))
            s.sendto(b"passed", ("10.0.0.2", 7002))

    with ring:
        got = listening(b, socket.AF_INET, 17, send)
        wire = list(ring.records(idle=0.3, duration=2.0))
    ports = [int.from_bytes(r.payload[2:4], "big") for r in got]
    assert ports == [7002]  # the raw socket never saw the dropped datagram ...
    dec = Decoder()
    assert sorted(dec.decode(r.data, r.linktype)["udp"].dport for r in wire) == [7001, 7002]


def test_ipproto_raw_is_send_only(lab: Any) -> None:
    a, b = pair(lab)
    got = listening(b, socket.AF_INET, 255, lambda: (
        a.run(["ping", "-c", "1", "-W", "1", "10.0.0.2"]),
        traffic.udp_send(a, b, "10.0.0.2", 7003, b"x")), duration=0.4)
    assert got == []


def test_listen_cli_json(lab: Any) -> None:
    a, b = pair(lab)
    proc = subprocess.Popen([RAWLAB, "raw", "listen", "--proto", "icmp", "-c", "1", "--json",
                             "--duration", "5", "--netns", b.name], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for _ in range(40):  # until the interpreter is up, its socket open and one request seen
        if proc.poll() is not None:
            break
        a.run(["ping", "-c", "1", "-W", "1", "10.0.0.2"])
        time.sleep(0.1)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    rec = json.loads(out.splitlines()[0])
    assert rec["layers"] == ["ipv4", "icmp"] and rec["icmp"]["type"] == 8
    assert rec["icmp"]["checksum_status"] == "good" and rec["ip_header"] == "kernel"
    assert rec["interface"] == "veth1" and rec["direction"] == "in"
