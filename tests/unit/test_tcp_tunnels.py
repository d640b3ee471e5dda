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
