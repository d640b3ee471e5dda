"""Protocol hierarchy: the same tree and counts as `tshark -z io,phs` (minus its `data` guesses)."""

from __future__ import annotations

import pytest

from rawlab.analysis.hierarchy import ProtocolHierarchy
from rawlab.decode.dispatch import Decoder


def eth():
    """Explicit MACs: scapy must never resolve one (that would send ARP)."""
    from scapy.layers.l2 import Ether

    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


pytestmark = pytest.mark.unit


def test_tree_order_and_counts() -> None:
    from scapy.all import ARP, IP, TCP, UDP, IPv6

    frames = [bytes(p) for p in (
        eth() / IP() / TCP() / (b"x" * 10),
        eth() / IP() / UDP(sport=9998, dport=9999) / (b"y" * 50),
        eth() / ARP(),
        eth() / IPv6() / TCP(),
        eth() / IP() / TCP(),
    )]
    dec, h = Decoder(), ProtocolHierarchy()
    for f in frames:
        h.add(dec.path(f, 1), len(f))
    rows = [(r.depth, r.name, r.packets, r.bytes) for r in h.rows()]
    assert rows == [
        (0, "eth", 5, 326),
        (1, "ipv4", 3, 210),
        (2, "tcp", 2, 118),
        (2, "udp", 1, 92),
        (1, "arp", 1, 42),
        (1, "ipv6", 1, 74),
        (2, "tcp", 1, 74),
    ]
    assert h.packets == 5 and h.bytes == 326
