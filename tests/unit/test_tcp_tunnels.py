"""`rawlab tcp` analyses a tunnelled TCP connection as its own flow (issue 16).

The conversation of test_tcp_encapsulation (handshake, loss, fast retransmission, FIN
exchange) inside VXLAN, Geneve, GRE, NVGRE, ERSPAN II, IP in IP, 6in4, MPLS, PPPoE
over QinQ, MACsec (integrity only), PBB and VN-Tag gives the events it gives bare,
field for field: the analyser's fast walk stops at the tunnel and decodes the packet
(rawlab.decode.descent.encapsulates). tshark agrees frame by frame on two of them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from tcp_synth import Conv
from tcp_tshark import compare, have_tshark
from test_tcp_encapsulation import MACS, conversation, events

from rawlab.decode.checksum import inet_checksum
from rawlab.pcap.writer import PcapWriter
from rawlab.records import LinkType

pytestmark = pytest.mark.unit

OUTER_V4 = (bytes((192, 0, 2, 1)), bytes((192, 0, 2, 2)))


def ipv4(proto: int, body: bytes) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 7, 0x4000, 64, proto, 0,
                     *OUTER_V4)
    return ip[:10] + struct.pack("!H", inet_checksum(ip)) + ip[12:] + body


def ipv6(nh: int, body: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, len(body), nh, 64, bytes(15) + b"\x01",
                       bytes(15) + b"\x02") + body


def udp(dport: int, body: bytes) -> bytes:  # checksum 0: not computed (IPv4 allows it)
    return struct.pack("!HHHH", 50000, dport, 8 + len(body), 0) + body


def eth(etype: int, body: bytes) -> bytes:
    return MACS + struct.pack("!H", etype) + body


def inner(ip: bytes) -> bytes:
    return eth(0x0800, ip)


TUNNELS: dict[str, Callable[[bytes], bytes]] = {
    "vxlan": lambda ip: eth(0x0800, ipv4(17, udp(4789, struct.pack("!HHI", 0x0800, 0, 7 << 8)
                                                  + inner(ip)))),
    "geneve": lambda ip: eth(0x0800, ipv4(17, udp(6081, struct.pack("!BBHI", 0, 0, 0x6558,
                                                                     7 << 8) + inner(ip)))),
    "gre": lambda ip: eth(0x0800, ipv4(47, struct.pack("!HH", 0, 0x0800) + ip)),
    "nvgre": lambda ip: eth(0x0800, ipv4(47, struct.pack("!HHI", 0x2000, 0x6558, 9 << 8)
                                         + inner(ip))),
    "erspan": lambda ip: eth(0x0800, ipv4(47, struct.pack("!HHI", 0x1000, 0x88BE, 1)
                                          + struct.pack("!HHI", 1 << 12, 5, 0) + inner(ip))),
    "ipip": lambda ip: eth(0x0800, ipv4(4, ip)),
    "6in4-v6-outer": lambda ip: eth(0x86DD, ipv6(4, ip)),
    "mpls": lambda ip: eth(0x8847, struct.pack("!II", 16 << 12 | 64, 17 << 12 | 0x100 | 64)
                           + ip),
    "pppoe-qinq": lambda ip: (MACS + struct.pack("!HHHHH", 0x88A8, 300, 0x8100, 100, 0x8864)
                              + struct.pack("!BBHH", 0x11, 0, 1, 2 + len(ip)) + b"\x00\x21"
                              + ip),
    "macsec": lambda ip: eth(0x88E5, struct.pack("!BBI", 0x20, 0, 1) + bytes(8)
                             + b"\x08\x00" + ip + bytes(16)),
    "pbb": lambda ip: eth(0x88E7, struct.pack("!I", 77) + MACS + b"\x08\x00" + ip),
    "vntag": lambda ip: eth(0x8926, struct.pack("!IH", 5 << 16 | 9, 0x0800) + ip),
}


@pytest.mark.parametrize("name", list(TUNNELS))
def test_tunnelled_connection_gives_the_bare_events(name: str) -> None:
    conv = conversation()
    want = events(conv, LinkType.RAW, lambda ip: ip)
    got = events(conv, LinkType.ETHERNET, TUNNELS[name])
    assert got == want


def _write(conv: Conv, wrap: Callable[[bytes], bytes], path: Path) -> Path:
    with PcapWriter(path, LinkType.ETHERNET) as w:
        for ts, ip in conv.packets:
            frame = wrap(ip)
            w.write(ts, frame, len(frame))
    return path


@pytest.mark.skipif(not have_tshark(), reason="tshark is not installed (Debian package tshark)")
@pytest.mark.parametrize("name", ["vxlan", "gre", "mpls"])
def test_tshark_analyses_the_tunnelled_connection_alike(name: str, tmp_path: Path) -> None:
    res = compare(_write(conversation(), TUNNELS[name], tmp_path / f"{name}.pcap"))
    assert res.frames == len(conversation().packets)
    assert not res.by_kind, res.summary()


def _summary(path: Path) -> dict[str, list[object]]:
    from rawlab.analysis.tcp.columns import summarise
    from rawlab.decode.columns import open_batches

    with open_batches(path) as batches:
        cols = summarise(batches)
    return {k: v.tolist() for k, v in cols.items() if k not in ("first_frame", "last_frame")}


@pytest.mark.parametrize("name", ["vxlan", "gre", "mpls", "pppoe-qinq", "6in4-v6-outer"])
def test_the_connection_table_sees_the_tunnelled_connection(name: str, tmp_path: Path) -> None:
    """`rawlab tcp FILE`'s table (the columnar summary) reads a tunnelled segment through the
    exact analyser's front end: every figure as for the bare conversation."""
    conv = conversation()
    bare = tmp_path / "bare.pcap"
    with PcapWriter(bare, LinkType.RAW) as w:
        for ts, ip in conv.packets:
            w.write(ts, ip, len(ip))
    want = _summary(bare)
    got = _summary(_write(conv, TUNNELS[name], tmp_path / f"{name}.pcap"))
    assert len(got["family"]) == 1
    assert got == want


def test_tunnel_ports_are_the_tunnels_only() -> None:
    """The ports whose datagrams the TCP front end decodes further are the tunnels'
    (VXLAN, Geneve ...), not the applications' (DNS, QUIC, NTP: no TCP inside)."""
    from rawlab.decode.descent import tunnel_udp_ports

    ports = tunnel_udp_ports()
    assert {4789, 6081} <= ports
    assert not ports & {53, 67, 68, 123, 161, 443, 5353}


def test_a_bad_checksum_on_an_application_port_counts_in_the_table(tmp_path: Path) -> None:
    """The columns check the checksums of rows on an application port too (HTTP here):
    the table's history has the bad-checksum letter, as the exact analyser's."""
    import subprocess
    import sys

    from scapy.all import IP, TCP, Ether

    c, s = {"src": "10.0.0.1", "dst": "10.0.0.2"}, {"src": "10.0.0.2", "dst": "10.0.0.1"}
    pkts = [IP(**c) / TCP(sport=40000, dport=80, flags="S", seq=1),
            IP(**s) / TCP(sport=80, dport=40000, flags="SA", seq=9, ack=2),
            IP(**c) / TCP(sport=40000, dport=80, flags="A", seq=2, ack=10),
            IP(**c) / TCP(sport=40000, dport=80, flags="PA", seq=2, ack=10, chksum=0x1234)
            / b"GET / HTTP/1.1\r\n\r\n"]
    path = tmp_path / "bad80.pcap"
    with PcapWriter(path, LinkType.ETHERNET) as w:
        for i, p in enumerate(pkts):
            frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / p)
            w.write(1_700_000_000_000_000_000 + i * 1000, frame, len(frame))
    rawlab = str(Path(sys.executable).with_name("rawlab"))
    table = subprocess.run([rawlab, "tcp", str(path)], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    exact = subprocess.run([rawlab, "tcp", "--exact", str(path)], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    assert table[1].split()[4] == exact[1].split()[4]
    assert "C" in table[1].split()[4]
