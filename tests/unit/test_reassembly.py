"""IP reassembly (rawlab.analysis.reassembly) as tshark does it by default: fragments shown
one by one as data, the completing one decoding the whole datagram; ``rawlab read``,
``--stats`` and ``rawlab tcp`` use it; memory stays bounded; bad fragments never raise.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tcp_tshark import compare as tcp_compare
from tcp_tshark import have_tshark

from rawlab import pipeline
from rawlab.analysis.reassembly import IpReassembly
from rawlab.analysis.tcp import Segment, TcpAnalyzer
from rawlab.decode.checksum import Verdict
from rawlab.decode.dispatch import Decoder
from rawlab.pcap.reader import open_file
from rawlab.pcap.writer import PcapWriter
from rawlab.present.hierarchy import HierarchySink
from rawlab.present.packet import JsonSink
from rawlab.records import LinkType

pytestmark = pytest.mark.unit
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
T0 = 1_700_000_000 * 10**9


def _v4_vxlan_fragments() -> list[bytes]:
    """A VXLAN datagram (UDP inside) cut in three, sent 2nd, 1st, 3rd."""
    from scapy.all import IP, UDP, Ether, fragment
    from scapy.layers.vxlan import VXLAN

    dgram = (IP(src="10.0.0.1", dst="10.0.0.2", id=77) / UDP(sport=1000, dport=4789)
             / VXLAN(vni=5) / Ether(**MACS) / IP(src="10.1.0.1", dst="10.1.0.2")
             / UDP(sport=5, dport=6) / (b"x" * 2000))
    frs = [bytes(Ether(**MACS) / f) for f in fragment(dgram, fragsize=800)]
    return [frs[1], frs[0], frs[2]]


def _v6_fragments() -> list[bytes]:
    from scapy.all import UDP, IPv6, IPv6ExtHdrFragment, fragment6

    dgram = (IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(id=99)
             / UDP(sport=1, dport=2) / (b"y" * 3000))
    return [bytes(f) for f in fragment6(dgram, 1280)]


def _write(path: Path, frames: list[bytes], linktype: int) -> Path:
    with PcapWriter(path, linktype) as w:
        for i, f in enumerate(frames):
            w.write(T0 + i * 1000, f, len(f))
    return path


def _json(path: Path) -> list[dict[str, Any]]:
    out = io.StringIO()
    with open_file(path) as cap:
        pipeline.run(cap, [JsonSink(out)])
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_fragments_are_data_and_the_last_one_decodes_the_datagram(tmp_path: Path) -> None:
    pkts = _json(_write(tmp_path / "f.pcap", _v4_vxlan_fragments(), LinkType.ETHERNET))
    assert [p["layers"] for p in pkts[:2]] == [["eth", "ipv4", "data"]] * 2
    last = pkts[2]
    assert last["layers"] == ["eth", "ipv4", "udp", "vxlan", "eth", "ipv4", "udp"]
    assert last["reassembled"] == {"layer": "ipv4", "frames": [2, 1, 3], "length": 2058}
    assert last["udp"]["len"] == 2050 and last["udp"]["checksum_status"] == "good"
    assert last["vxlan"]["vni"] == 5 and last["ipv45"]["dst"] == "10.1.0.2"


def test_ipv6_fragments(tmp_path: Path) -> None:
    pkts = _json(_write(tmp_path / "f6.pcap", _v6_fragments(), LinkType.RAW))
    assert [p["layers"] for p in pkts] == [["ipv6", "data"], ["ipv6", "data"], ["ipv6", "udp"]]
    assert pkts[2]["reassembled"] == {"layer": "ipv6", "frames": [1, 2, 3], "length": 3008}
    assert pkts[2]["udp"]["checksum_status"] == "good"


@pytest.mark.skipif(not have_tshark(), reason="tshark is not installed (Debian package tshark)")
@pytest.mark.parametrize("which", ["v4", "v6"])
def test_tshark_reassembles_alike(which: str, tmp_path: Path) -> None:
    frames, lt = ((_v4_vxlan_fragments(), LinkType.ETHERNET) if which == "v4"
                  else (_v6_fragments(), LinkType.RAW))
    path = _write(tmp_path / "f.pcap", frames, lt)
    ip = "ip" if which == "v4" else "ipv6"
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-E",
                          "separator=;", "-e", "frame.protocols", "-e", f"{ip}.fragment",
                          "-e", f"{ip}.reassembled.length"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    for got, line in zip(_json(path), out, strict=True):
        protos, frags, length = line.split(";")
        names = [{"ip": "ipv4"}.get(p, p) for p in protos.split(":")
                 if p not in ("ethertype", "raw", "ipv6.fraghdr")]
        if names[-1] == "data" and got["layers"][-1] == "udp":
            names.pop()  # tshark names the UDP payload data; rawlab leaves it as payload
        assert got["layers"] == names
        re = got.get("reassembled")
        assert (re["frames"] if re else []) == [int(f) for f in frags.split(",") if f]
        assert (str(re["length"]) if re else "") == length


def _stats(path: Path) -> str:
    out = io.StringIO()
    counts = pipeline.Counts()
    with open_file(path) as cap:
        pipeline.run(cap, [HierarchySink(out, counts, source="x")], counts=counts)
    return out.getvalue()


def test_stats_count_the_reassembled_protocols(tmp_path: Path) -> None:
    text = _stats(_write(tmp_path / "f.pcap", _v4_vxlan_fragments(), LinkType.ETHERNET))
    assert "    data                                 frames:2 bytes:1668" in text
    assert "      vxlan                              frames:1 bytes:492" in text
    assert "            udp                          frames:1 bytes:492" in text


def _tcp_in_fragments() -> list[bytes]:
    """A handshake, then a 3000-byte segment sent in fragments, then its ACK."""
    from scapy.all import IP, TCP, Ether, fragment

    c = {"src": "10.0.0.1", "dst": "10.0.0.2"}
    s = {"src": "10.0.0.2", "dst": "10.0.0.1"}
    syn = IP(**c) / TCP(sport=4000, dport=80, flags="S", seq=100)
    synack = IP(**s) / TCP(sport=80, dport=4000, flags="SA", seq=500, ack=101)
    ack = IP(**c) / TCP(sport=4000, dport=80, flags="A", seq=101, ack=501)
    data = IP(id=9, **c) / TCP(sport=4000, dport=80, flags="PA", seq=101, ack=501) / (b"z" * 3000)
    dack = IP(**s) / TCP(sport=80, dport=4000, flags="A", seq=501, ack=3101)
    pkts = [syn, synack, ack, *fragment(data, fragsize=1400), dack]
    return [bytes(Ether(**MACS) / p) for p in pkts]


def test_tcp_analyses_a_fragmented_segment(tmp_path: Path) -> None:
    frames = _tcp_in_fragments()
    tcp = TcpAnalyzer()
    segs = [e for i, f in enumerate(frames, 1)
            for e in tcp.feed_bytes(i, T0 + i, f, LinkType.ETHERNET) if isinstance(e, Segment)]
    assert [s.frame for s in segs] == [1, 2, 3, 6, 7]
    assert segs[3].len == 3000 and segs[3].checksum_status is Verdict.GOOD
    assert segs[4].acked_frame == 6


@pytest.mark.skipif(not have_tshark(), reason="tshark is not installed (Debian package tshark)")
def test_tshark_analyses_the_fragmented_segment_alike(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.pcap", _tcp_in_fragments(), LinkType.ETHERNET)
    res = tcp_compare(path)
    assert res.frames == 5
    assert not res.by_kind, res.summary()


def test_memory_is_bounded() -> None:
    from scapy.all import IP, UDP, fragment

    dec = Decoder()
    r = IpReassembly(dec, max_datagrams=3, timeout_ns=10**9)
    firsts = [bytes(fragment(IP(src="10.0.0.1", dst="10.0.0.2", id=i) / UDP() / bytes(3000),
                             fragsize=1000)[0]) for i in range(5)]
    for i, f in enumerate(firsts):
        r.packet(i + 1, T0, dec.decode(f, LinkType.RAW))
    assert r.pending == 3 and r.dropped == 2
    r.packet(9, T0 + 2 * 10**9, dec.decode(firsts[0], LinkType.RAW))  # the others time out
    assert r.pending == 1 and r.dropped == 5
    # a fragment that would put the datagram past 65,535 bytes gives it up
    big = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0x2000 | 8191, 64, 17, 0,
                      bytes(4), bytes(4)) + bytes(8)
    p = r.packet(10, T0 + 2 * 10**9, dec.decode(big, LinkType.RAW))
    assert p.names == ("ipv4", "data") and r.dropped == 6


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 8191), st.booleans(),
                          st.binary(max_size=40)), max_size=12))
def test_random_fragments_never_raise(frags: list[tuple[int, int, bool, bytes]]) -> None:
    dec = Decoder()
    r = IpReassembly(dec)
    for i, (ident, off, more, body) in enumerate(frags):
        frag = (0x2000 if more else 0) | off
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, frag, 64,
                         17, 0, bytes(4), bytes(4)) + body
        p = r.packet(i, T0 + i, dec.decode(ip, LinkType.RAW))
        _ = (p.names, p.checksums, p.reassembled)


def test_the_connection_table_takes_the_fragmented_segment(tmp_path: Path) -> None:
    """`rawlab tcp FILE`'s table (the columnar summary) reassembles as the exact analyser:
    the 3,000 bytes sent in fragments are the client's data, counted once."""
    from rawlab.analysis.tcp.columns import summarise
    from rawlab.decode.columns import open_batches

    path = _write(tmp_path / "t.pcap", _tcp_in_fragments(), LinkType.ETHERNET)
    with open_batches(path) as batches:
        cols = {k: v.tolist() for k, v in summarise(batches).items()}
    assert len(cols["family"]) == 1
    got = {k: v[0] for k, v in cols.items() if k in (
        "c2s_packets", "c2s_data_pkts", "c2s_data_bytes", "c2s_rexmit_pkts", "s2c_packets",
        "s2c_ack_pkts", "history")}
    assert got == {"c2s_packets": 3, "c2s_data_pkts": 1, "c2s_data_bytes": 3000,
                   "c2s_rexmit_pkts": 0, "s2c_packets": 2, "s2c_ack_pkts": 2,
                   "history": "ShADa"}
