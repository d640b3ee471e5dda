"""present.packet.tree_rows: the -v tree's lines with the bytes each describes."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from rawlab.decode.dispatch import Decoder
from rawlab.pcap.reader import read_records
from rawlab.present.packet import tree, tree_rows

pytestmark = pytest.mark.unit

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def first(name: str) -> tuple[object, object]:
    rec = next(iter(read_records(CAPTURES / name)))
    return rec, Decoder().decode(rec.data, rec.linktype)


def test_rows_are_the_tree_and_point_at_the_right_bytes() -> None:
    rec, pkt = first("tcp-clean.pcap")
    rows = list(tree_rows(1, rec, pkt, "veth1"))
    assert [r.text for r in rows] == list(tree(1, rec, pkt, "veth1"))
    data = rec.data
    assert rows[0].depth == 0 and (rows[0].offset, rows[0].size) == (0, 74)
    layers = [(r.text.split()[0], r.offset, r.size) for r in rows if r.depth == 1]
    assert layers == [("eth", 0, 14), ("ipv4", 14, 20), ("tcp", 34, 40)]
    src = next(r for r in rows if r.depth == 2 and r.text.split()[1:2] == ["src"]
               and r.offset == 26)
    assert socket.inet_ntoa(data[src.offset:src.offset + src.size]) == "10.77.0.1"
    assert src.text.endswith("10.77.0.1")
    mss = next(r for r in rows if "option mss" in r.text)
    assert (mss.offset, mss.size) == (54, 4) and data[54:58] == bytes([2, 4, 0x05, 0xB4])
    nop = next(r for r in rows if "option nop" in r.text)
    assert nop.size == 1 and data[nop.offset] == 1
    sport = next(r for r in rows if r.text.split()[1:2] == ["sport"])
    assert (sport.offset, sport.size) == (34, 2)
    assert int(sport.text.split()[2]) == int.from_bytes(data[34:36], "big")
    verdicts = [r for r in rows if "checksum" in r.text and r.offset is None]
    assert verdicts and all(r.size == 0 for r in verdicts)


def test_payload_row_covers_the_payload() -> None:
    for rec in read_records(CAPTURES / "tcp-clean.pcap"):
        pkt = Decoder().decode(rec.data, rec.linktype)
        if len(pkt.payload):
            row = list(tree_rows(1, rec, pkt, None))[-1]
            assert row.text.startswith("  payload @66:")
            assert bytes(rec.data[row.offset:row.offset + row.size]) == bytes(pkt.payload)
            return
    raise AssertionError("no payload in tcp-clean.pcap")


def test_messages_a_segment_completes_and_begins_point_at_their_own_bytes(
        tmp_path: Path) -> None:
    """DNS over TCP: the second segment ends one message and holds a second whole; the
    first message's row covers its tail in this frame, the second starts after it."""
    import struct

    from scapy.all import DNS, DNSQR, IP, TCP, Ether

    from rawlab import pipeline
    from rawlab.analysis.streams import TcpStreams
    from rawlab.pcap.writer import PcapWriter
    from rawlab.records import LinkType

    m1, m2 = (bytes(DNS(id=i, qd=DNSQR(qname=f"q{i}.example."))) for i in (1, 2))
    stream = struct.pack("!H", len(m1)) + m1 + struct.pack("!H", len(m2)) + m2
    cut = 10
    c, s = {"src": "10.0.0.1", "dst": "10.0.0.2"}, {"src": "10.0.0.2", "dst": "10.0.0.1"}
    eth = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
    pkts = [IP(**c) / TCP(sport=4000, dport=53, flags="S", seq=1),
            IP(**s) / TCP(sport=53, dport=4000, flags="SA", seq=9, ack=2),
            IP(**c) / TCP(sport=4000, dport=53, flags="PA", seq=2, ack=10) / stream[:cut],
            IP(**c) / TCP(sport=4000, dport=53, flags="PA", seq=2 + cut, ack=10) / stream[cut:]]
    path = tmp_path / "dns.pcap"
    with PcapWriter(path, LinkType.ETHERNET) as w:
        for i, p in enumerate(pkts):
            frame = bytes(Ether(**eth) / p)
            w.write(1_700_000_000_000_000_000 + i, frame, len(frame))
    got: list[list[object]] = []

    class Rows:
        decodes = True
        uses_interface = False

        def packet(self, frame: int, rec: object, pkt: object, iface: object) -> None:
            got.append(list(tree_rows(frame, rec, pkt, None)))

        def close(self) -> None:
            pass

    pipeline.run(read_records(path), [TcpStreams(), Rows()])
    payload_at = 14 + 20 + 20
    dns = [r for r in got[3] if r.depth == 1 and r.text.split()[0] == "dns"]
    tail = len(stream) - cut - (2 + len(m2))
    assert [(r.offset, r.size) for r in dns] == [(payload_at, tail),
                                                  (payload_at + tail, 2 + len(m2))]
