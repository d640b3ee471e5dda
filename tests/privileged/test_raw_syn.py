"""`rawlab raw syn`: open (a listener in the peer namespace), closed (nothing listens:
RST), filtered (an nftables drop in the peer): IPv4 with IP_HDRINCL and IPv6; the SYN on
the wire is byte for byte the one rawlab built, and our kernel's RST is shown."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _pairs import pair as lab_pair

from rawlab.decode.dispatch import Decoder
from rawlab.raw.syn import CLOSED, FILTERED, OPEN, probe

RAWLAB = str(Path(sys.executable).with_name("rawlab"))
PORT = 5000


@pytest.fixture
def pair(lab: Any) -> Iterator[tuple[Any, Any]]:
    """a ↔ b, IPv4 + IPv6; b listens on PORT for both families."""
    a, b = lab_pair(lab)
    with b.entered():
        s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s4.bind(("10.0.0.2", PORT))
    s6.bind(("fd00::2", PORT))
    s4.listen()
    s6.listen()
    try:
        yield a, b
    finally:
        s4.close()
        s6.close()


@pytest.mark.parametrize("target", ["10.0.0.2", "fd00::2"])
def test_open_shows_both_packets_and_our_kernels_rst(pair: tuple[Any, Any], target: str) -> None:
    a, _b = pair
    res = probe(target, PORT, ttl=33, netns=a.name, timeout=3.0)
    assert res.state == OPEN, res.reason
    assert res.answer_flags is not None and res.answer_flags & 0x12 == 0x12
    assert res.rtt_ns is not None and res.rtt_ns > 0
    # the SYN the capture saw is exactly what rawlab built (IPv6: the header the kernel added)
    dec = Decoder()
    pkts = [dec.decode(r.data, r.linktype) for r in res.capture]
    syns = [p for p in pkts if p["tcp"].flags == 0x02]
    assert len(syns) == 1
    ip = syns[0].layer("ipv4") or syns[0].layer("ipv6")
    assert bytes(ip.buf) == res.sent
    assert syns[0].checksum("tcp").verdict.value == "good"
    # our own kernel reset the connection it does not know, seq = the SYN-ACK's ack
    rst = res.kernel_rst
    assert rst is not None
    t = dec.decode(rst.data, rst.linktype)["tcp"]
    assert t.flags & 0x04 and t.seq == (res.isn + 1) & 0xFFFFFFFF


@pytest.mark.parametrize("target", ["10.0.0.2", "fd00::2"])
def test_closed_is_a_rst_from_the_peer(pair: tuple[Any, Any], target: str) -> None:
    a, _b = pair
    res = probe(target, PORT + 1, netns=a.name, timeout=3.0, capture=False)
    assert res.state == CLOSED, res.reason
    assert res.answer is not None and res.answer.src == target
    assert res.answer_flags is not None and res.answer_flags & 0x04
    assert res.answer.rebuilt == (":" in target)


def test_filtered_by_an_nftables_drop_in_the_peer(pair: tuple[Any, Any]) -> None:
    a, b = pair
    b.run(["nft", "-f", "-"], input="table inet t {\n chain input {\n type filter hook input "
          f"priority 0;\n tcp dport {PORT} drop\n }}\n}}\n")
    res = probe("10.0.0.2", PORT, netns=a.name, timeout=0.5, capture=False)
    assert res.state == FILTERED and res.answer is None and res.icmp is None


def test_syn_cli_text_and_json(pair: tuple[Any, Any]) -> None:
    a, _b = pair
    p = subprocess.run([RAWLAB, "raw", "syn", "10.0.0.2", str(PORT), "--ttl", "9", "--netns",
                        a.name], capture_output=True, text=True, timeout=20, check=False)
    assert p.returncode == 0, p.stderr
    assert f"port {PORT} is OPEN" in p.stdout
    assert "8  ttl            9 (0x09)" in p.stdout  # every field, with its offset
    assert "our kernel's RST" in p.stdout and "no socket of this kernel owns" in p.stdout
    p = subprocess.run([RAWLAB, "raw", "syn", "fd00::2", str(PORT + 1), "--json", "--netns",
                        a.name], capture_output=True, text=True, timeout=20, check=False)
    doc = json.loads(p.stdout)
    assert doc["schema"] == "rawlab.raw.syn/1" and doc["state"] == "closed"
    assert doc["answer"]["tcp"]["flags"] == "RA" and doc["answer"]["ip_header"] == "rebuilt"
    assert doc["sent"]["tcp"]["checksum_status"] == "good"
