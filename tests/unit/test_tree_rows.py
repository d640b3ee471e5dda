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
