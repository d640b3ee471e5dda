"""`rawlab tcp` analyses a segment the same whatever link header carries it.

The same conversation (a handshake, data with a loss and a fast retransmission,
a FIN exchange) over plain Ethernet, one 802.1Q tag, QinQ (802.1ad S-tag +
802.1Q C-tag), Linux cooked v1 and v2, and raw IP must give the same events,
field for field, and `rawlab tcp --json` the same lines (issue 13 item 9: QinQ
used to be dropped).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tcp_synth import SYN_OPTS, Conv

from rawlab.analysis.tcp import ConnectionClosed, Handshake, Segment, TcpAnalyzer
from rawlab.cli import main
from rawlab.pcap.writer import PcapWriter
from rawlab.records import LinkType

pytestmark = pytest.mark.unit

MACS = bytes.fromhex("020000000002" "020000000001")


def ethernet(ip: bytes) -> bytes:
    return MACS + b"\x08\x00" + ip


def dot1q(ip: bytes) -> bytes:
    return MACS + b"\x81\x00" + struct.pack("!H", 0x2064) + b"\x08\x00" + ip


def qinq(ip: bytes) -> bytes:  # 802.1ad S-tag (VID 300), then 802.1Q C-tag (VID 100)
    return (MACS + b"\x88\xa8" + struct.pack("!H", 300) + b"\x81\x00"
            + struct.pack("!H", 100) + b"\x08\x00" + ip)


def sll(ip: bytes) -> bytes:  # pkttype, hatype (Ethernet), halen, addr[8], protocol
    return struct.pack("!HHH8sH", 0, 1, 6, MACS[6:] + b"\0\0", 0x0800) + ip


def sll2(ip: bytes) -> bytes:  # protocol, reserved, ifindex, hatype, pkttype, halen, addr[8]
    return struct.pack("!HHIHBB8s", 0x0800, 0, 3, 1, 4, 6, MACS[6:] + b"\0\0") + ip


WRAPS: dict[str, tuple[int, Callable[[bytes], bytes]]] = {
    "ethernet": (LinkType.ETHERNET, ethernet),
    "802.1q": (LinkType.ETHERNET, dot1q),
    "qinq": (LinkType.ETHERNET, qinq),
    "sll": (LinkType.LINUX_SLL, sll),
    "sll2": (LinkType.LINUX_SLL2, sll2),
    "raw": (LinkType.RAW, lambda ip: ip),
}


def conversation() -> Conv:
    conv = Conv().handshake(opts=SYN_OPTS)
    conv.c(3, "PA", 1, 1, n=100).c(4, "PA", 101, 1, n=100).c(5, "PA", 301, 1, n=100)
    conv.s(6, "A", 1, 101).s(6.1, "A", 1, 101).s(6.2, "A", 1, 101).s(6.3, "A", 1, 101)
    conv.c(7, "PA", 101, 1, n=100)  # fast retransmission of the lost segment
    conv.s(8, "A", 1, 401).c(9, "FA", 401, 1).s(10, "FA", 1, 402).c(11, "A", 402, 2)
    return conv


def events(conv: Conv, linktype: int, wrap: Callable[[bytes], bytes]) -> list[Any]:
    tcp = TcpAnalyzer()
    out: list[Any] = []
    for frame, (ts, ip) in enumerate(conv.packets, 1):
        out += tcp.feed_bytes(frame, ts, wrap(ip), linktype)
    return out + tcp.finish()


@pytest.mark.parametrize("name", [n for n in WRAPS if n != "raw"])
def test_same_events_whatever_the_link_header(name: str) -> None:
    conv = conversation()
    want = events(conv, LinkType.RAW, WRAPS["raw"][1])
    segs = [e for e in want if isinstance(e, Segment)]
    assert len(segs) == len(conv.packets)
    assert [e for e in want if isinstance(e, Handshake)]
    assert [e.reason for e in want if isinstance(e, ConnectionClosed)] == ["fin"]
    assert any("fast_retransmission" in s.analysis for s in segs)
    linktype, wrap = WRAPS[name]
    assert events(conv, linktype, wrap) == want


def test_rawlab_tcp_prints_the_same(tmp_path: Path) -> None:
    conv = conversation()
    outputs = {}
    for name, (linktype, wrap) in WRAPS.items():
        path = tmp_path / f"{name}.pcap"
        with PcapWriter(path, linktype) as w:
            for ts, ip in conv.packets:
                frame = wrap(ip)
                w.write(ts, frame, len(frame))
        r = CliRunner().invoke(main, ["tcp", "--json", str(path)], catch_exceptions=False)
        assert r.exit_code == 0
        outputs[name] = r.output
    assert outputs["raw"].count('"type": "segment"') == len(conv.packets)
    for name, out in outputs.items():
        assert out == outputs["raw"], name
