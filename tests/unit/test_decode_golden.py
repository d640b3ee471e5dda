"""Golden bytes → expected fields, one protocol at a time."""

from __future__ import annotations

import struct

import pytest

from rawlab.decode.arp import Arp
from rawlab.decode.checksum import CsumHint, Verdict
from rawlab.decode.dispatch import Decoder, build_table
from rawlab.decode.ethernet import Ethernet
from rawlab.decode.icmp import Icmp
from rawlab.decode.ipv4 import Ipv4
from rawlab.decode.ipv6 import Ipv6
from rawlab.decode.sll import Sll, Sll2
from rawlab.decode.tcp import (
    TCPOPT_MPTCP,
    TCPOPT_NOP,
    Tcp,
    flag_letters,
    parse_options,
)
from rawlab.decode.udp import Udp

pytestmark = pytest.mark.unit

ETH_IP_TCP_SYN = bytes.fromhex(
    "00112233445566778899aabb08004500003c1234400040063c51c0000201c63364029c4001bb01020304"
    "00000000a002faf0dc940000020405b40402080a0001e2400000000001030307"
)
QINQ_UDP = bytes.fromhex(
    "ffffffffffff02000000000188a86064810000c808004500001e00010000401166cc0a0000010a000002"
    "14e90035000a6e506869"
)
IPV6_FRAG_ICMP6 = bytes.fromhex(
    "6b812345001c004020010db800000000000000000000000120010db800000000000000000000000"
    "22c000104000000003a000001deadbeef8000456b0007000170696e67"
)
ARP_REQ = bytes.fromhex(
    "ffffffffffff02000000000108060001080006040001020000000001c0000201000000000000c00002fe"
)
ICMP_ECHO = bytes.fromhex("45000020000100004001f6d8c0000201c00002020800f0f34242000361626364")
SLL_IP_UDP = bytes.fromhex(
    "000400010006020000000001000008004500001c0001000040117cce7f0000017f00000100010002000801d9"
)
SLL2_IP6_TCP = bytes.fromhex(
    "86dd000000000003000100060200000000010000600000000014064000000000000000000000000000000001"
    "00000000000000000000000000000001000100020000000500000009501220008fc00000"
)


@pytest.fixture(scope="module")
def dec() -> Decoder:
    return Decoder()


def test_ethernet_ipv4_tcp_syn(dec: Decoder) -> None:
    p = dec.decode(ETH_IP_TCP_SYN, 1)
    assert p.names == ("eth", "ipv4", "tcp")
    eth, ip, tcp = p.layers
    assert isinstance(eth, Ethernet) and isinstance(ip, Ipv4) and isinstance(tcp, Tcp)
    assert eth.dst == bytes.fromhex("001122334455") and eth.src == bytes.fromhex("66778899aabb")
    assert (eth.type, eth.ethertype, eth.tags, eth.header_len) == (0x0800, 0x0800, (), 14)
    assert (ip.version, ip.ihl, ip.tos, ip.total_length, ip.id) == (4, 5, 0, 60, 0x1234)
    assert (ip.flags, ip.frag_offset, ip.ttl, ip.proto, ip.checksum) == (2, 0, 64, 6, 0x3C51)
    assert ip.dont_fragment and not ip.is_fragment and ip.options == ()
    assert ip.src == bytes([192, 0, 2, 1]) and ip.dst == bytes([198, 51, 100, 2])
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack) == (40000, 443, 0x01020304, 0)
    assert (tcp.dataofs, tcp.flags, tcp.window, tcp.checksum, tcp.urgptr) == (
        10, 0x002, 64240, 0xDC94, 0)
    assert tcp.flag_str == "S"
    assert [o.kind for o in tcp.options] == [2, 4, 8, 1, 3]
    assert [o.offset for o in tcp.options] == [20, 24, 26, 36, 37]
    assert (tcp.mss, tcp.wscale, tcp.sack_permitted, tcp.timestamps, tcp.sack) == (
        1460, 7, True, (123456, 0), ())
    assert len(tcp.payload) == 0
    assert [str(c) for c in p.checksums] == ["None", "good", "good"]
    assert p.csum_status is not None and p.csum_status.verdict is Verdict.GOOD
    assert not p.truncated and not p.malformed


def test_qinq_udp(dec: Decoder) -> None:
    p = dec.decode(QINQ_UDP, 1)
    # port 53: the two payload bytes are the start of a DNS message, cut short (as tshark)
    assert p.names == ("eth", "ipv4", "udp", "dns")
    assert p["dns"].truncated and not p["dns"].malformed
    eth = p["eth"]
    assert [(t.tpid, t.pcp, t.dei, t.vid) for t in eth.tags] == [
        (0x88A8, 3, 0, 100), (0x8100, 0, 0, 200)]
    assert eth.vlan == 100 and eth.header_len == 22 and eth.ethertype == 0x0800
    udp = p["udp"]
    assert (udp.sport, udp.dport, udp.length, udp.checksum) == (5353, 53, 10, 0x6E50)
    assert bytes(udp.payload) == b"hi"
    assert p.checksum("udp").verdict is Verdict.GOOD


def test_ipv6_extension_chain_and_fragment(dec: Decoder) -> None:
    p = dec.decode(IPV6_FRAG_ICMP6, 101)
    assert p.names == ("ipv6", "icmpv6")
    ip = p["ipv6"]
    assert isinstance(ip, Ipv6)
    assert (ip.version, ip.traffic_class, ip.flow_label, ip.payload_length) == (
        6, 0xB8, 0x12345, 28)
    assert (ip.next_header, ip.hop_limit, ip.proto, ip.header_len) == (0, 64, 58, 56)
    assert [(e.type, e.offset, e.length, e.next_header) for e in ip.ext_headers] == [
        (0, 40, 8, 44), (44, 48, 8, 58)]
    assert ip.fragment == (0, True, 0xDEADBEEF) and ip.is_fragment
    m = p["icmpv6"]
    assert (m.type, m.code, m.checksum, m.id, m.seq) == (128, 0, 0x456B, 7, 1)
    assert bytes(m.payload) == b"ping"
    # The first fragment of several: the checksum covers bytes we do not have.
    assert p.checksum("icmpv6").verdict is Verdict.UNVERIFIED


def test_later_ipv6_fragment_is_raw(dec: Decoder) -> None:
    b = bytearray(IPV6_FRAG_ICMP6)
    b[50:52] = struct.pack("!H", (100 << 3) | 1)  # fragment offset 100
    p = dec.decode(bytes(b), 101)
    assert p.names == ("ipv6", "data")
    assert p.layers[1].proto == 58


def test_arp_request(dec: Decoder) -> None:
    p = dec.decode(ARP_REQ, 1)
    assert p.names == ("eth", "arp")
    a = p["arp"]
    assert isinstance(a, Arp)
    assert (a.htype, a.ptype, a.hlen, a.plen, a.op) == (1, 0x0800, 6, 4, 1)
    assert a.sha == bytes.fromhex("020000000001") and a.spa == bytes([192, 0, 2, 1])
    assert a.tha == bytes(6) and a.tpa == bytes([192, 0, 2, 254])


def test_icmp_echo_raw_ip(dec: Decoder) -> None:
    p = dec.decode(ICMP_ECHO, 101)
    assert p.names == ("ipv4", "icmp")
    m = p["icmp"]
    assert isinstance(m, Icmp)
    assert (m.type, m.code, m.checksum, m.id, m.seq) == (8, 0, 0xF0F3, 0x4242, 3)
    assert bytes(m.payload) == b"abcd"
    assert [c.verdict for c in p.checksums if c] == [Verdict.GOOD, Verdict.GOOD]


def test_sll_and_sll2(dec: Decoder) -> None:
    p = dec.decode(SLL_IP_UDP, 113)
    assert p.names == ("sll", "ipv4", "udp")
    s = p["sll"]
    assert isinstance(s, Sll)
    assert (s.pkttype, s.hatype, s.halen, s.protocol) == (4, 1, 6, 0x0800)
    assert s.address == bytes.fromhex("020000000001")
    p2 = dec.decode(SLL2_IP6_TCP, 276)
    assert p2.names == ("sll", "ipv6", "tcp")
    s2 = p2["sll"]
    assert isinstance(s2, Sll2)
    assert (s2.protocol, s2.reserved, s2.ifindex, s2.hatype, s2.pkttype, s2.halen) == (
        0x86DD, 0, 3, 1, 0, 6)
    t = p2["tcp"]
    assert (t.seq, t.ack, t.flag_str) == (5, 9, "SA")
    assert p2.checksum("tcp").verdict is Verdict.GOOD


def test_bad_checksums_carry_expected_value(dec: Decoder) -> None:
    b = bytearray(ETH_IP_TCP_SYN)
    b[24:26] = b"\x00\x00"  # IPv4 header checksum
    b[50:52] = b"\x12\x34"  # TCP checksum
    p = dec.decode(bytes(b), 1)
    ip_cs, tcp_cs = p.checksum("ipv4"), p.checksum("tcp")
    assert ip_cs.verdict is Verdict.BAD and ip_cs.value == 0 and ip_cs.expected == 0x3C51
    assert tcp_cs.verdict is Verdict.BAD and tcp_cs.value == 0x1234
    assert tcp_cs.expected == 0xDC94
    assert p.csum_status.verdict is Verdict.BAD


def test_hints_from_live_capture(dec: Decoder) -> None:
    b = bytearray(ETH_IP_TCP_SYN)
    b[50:52] = b"\x00\x00"
    assert dec.decode(bytes(b), 1, CsumHint.NOT_READY).checksum("tcp").verdict is (
        Verdict.PARTIAL)
    assert dec.decode(bytes(b), 1, CsumHint.VALID).checksum("tcp").verdict is (
        Verdict.KERNEL_VERIFIED)
    # the IPv4 header is checked in software whatever the hint
    assert dec.decode(bytes(b), 1, CsumHint.VALID).checksum("ipv4").verdict is Verdict.GOOD


def test_truncated_capture(dec: Decoder) -> None:
    p = dec.decode(ETH_IP_TCP_SYN[:40], 1)
    assert p.names == ("eth", "ipv4", "tcp")
    assert p.truncated and p["ipv4"].truncated and p["tcp"].truncated
    assert p["tcp"].sport == 40000 and p["tcp"].ack == 0  # padded fields read 0
    assert p.checksum("tcp").verdict is Verdict.UNVERIFIED
    assert dec.decode(ETH_IP_TCP_SYN[:30], 1).names == ("eth", "ipv4")
    assert dec.decode(b"", 1).names == ("eth",)


def test_ethernet_padding_not_in_payload(dec: Decoder) -> None:
    p = dec.decode(QINQ_UDP + bytes(20), 1)
    assert bytes(p["udp"].payload) == b"hi"
    assert p.checksum("udp").verdict is Verdict.GOOD


def test_unknown_values_survive(dec: Decoder) -> None:
    p = dec.decode(ETH_IP_TCP_SYN[:12] + b"\x88\xb5" + b"experimental", 1)
    assert p.names == ("eth", "data")
    assert p.layers[1].proto == 0x88B5 and bytes(p.layers[1].buf) == b"experimental"
    ip = bytearray(ICMP_ECHO)
    ip[9] = 253
    p = dec.decode(bytes(ip), 101)
    assert p.names == ("ipv4", "data") and p.layers[1].proto == 253
    assert dec.decode(b"\x01\x02", 147).names == ("data",)


def test_tcp_options_mptcp_sack_and_unknown_kept_raw() -> None:
    raw = (b"\x01\x01\x05\x12" + struct.pack("!IIII", 1, 2, 3, 4)
           + b"\x1e\x0c\x00\x81" + bytes(8) + b"\xfd\x04\xab\xcd")
    opts, bad = parse_options(raw)
    assert not bad
    assert [o.kind for o in opts] == [TCPOPT_NOP, TCPOPT_NOP, 5, TCPOPT_MPTCP, 253]
    assert opts[2].value() == ((1, 2), (3, 4))
    assert opts[3].value() == (0,) and opts[3].data == b"\x00\x81" + bytes(8)
    assert opts[4].data == b"\xab\xcd" and opts[4].offset == 20 + 32
    opts, bad = parse_options(b"\x02\x08\x05")  # length runs past the header
    assert bad and opts[0].kind == 2 and opts[0].data == b"\x05"
    opts, bad = parse_options(b"\x08\x00\x00\x00")
    assert bad


def test_tcp_mptcp_accessor() -> None:
    hdr = bytearray(ETH_IP_TCP_SYN[34:54])
    hdr[12] = 0x70  # data offset 7 → 8 bytes of options
    t = Tcp(bytes(hdr) + b"\x1e\x04\x00\x81\x01\x01\x01\x00")
    assert t.mptcp == (0, b"\x00\x81") and t.mss is None and not t.malformed


def test_flag_letters_scapy_order() -> None:
    assert flag_letters(0x012) == "SA"
    assert flag_letters(0x1FF) == "FSRPAUECN"
    assert flag_letters(0) == ""


def test_ipv4_options_and_fragments() -> None:
    hdr = bytearray(ICMP_ECHO[:20])
    hdr[0] = 0x46
    body = bytes(hdr) + b"\x94\x04\x00\x00" + ICMP_ECHO[20:]
    body = body[:2] + struct.pack("!H", len(body)) + body[4:]
    ip = Ipv4(body)
    assert ip.header_len == 24 and ip.options == ((0x94, 20, b"\x00\x00"),)
    frag = bytearray(ICMP_ECHO)
    frag[6:8] = struct.pack("!H", 0x2000 | 10)
    ip = Ipv4(bytes(frag))
    assert ip.more_fragments and ip.frag_offset == 10 and ip.is_fragment
    assert Decoder().decode(bytes(frag), 101).names == ("ipv4", "data")


def test_ipv4_tso_length_zero() -> None:
    b = bytearray(ETH_IP_TCP_SYN + b"payload")
    b[16:18] = b"\x00\x00"
    p = Decoder().decode(bytes(b), 1)
    assert p["ipv4"].tso and not p["ipv4"].malformed
    assert bytes(p["tcp"].payload) == b"payload"
    assert p.checksum("tcp").verdict is Verdict.PARTIAL


def test_partial_checksum_detected_without_hint() -> None:
    from rawlab.decode.checksum import pseudo_header_v4

    b = bytearray(ETH_IP_TCP_SYN)
    ps = pseudo_header_v4(b[26:30], b[30:34], 6, len(b) - 34)
    b[50:52] = struct.pack("!H", ps)
    assert Decoder().decode(bytes(b), 1).checksum("tcp").verdict is Verdict.PARTIAL


def test_udp_zero_checksum_over_ipv4_is_not_bad() -> None:
    b = bytearray(QINQ_UDP)
    b[48:50] = b"\x00\x00"
    assert Decoder().decode(bytes(b), 1).checksum("udp").verdict is Verdict.UNVERIFIED


def test_malformed_marks() -> None:
    assert Ipv4(b"\x45\x00\x00\x10" + bytes(16)).malformed  # total length < header
    assert Ipv4(b"\x44" + bytes(19)).malformed  # ihl 4
    assert Ipv4(b"\x65" + bytes(19)).malformed  # version 6
    assert Udp(b"\x00\x01\x00\x02\x00\x04\x00\x00").malformed
    assert Tcp(bytes(12) + b"\x40" + bytes(7)).malformed
    assert Ipv6(b"\x40" + bytes(39)).malformed
    e = Ethernet(bytes(12) + b"\x81\x00\x00")  # tag cut short
    assert e.truncated and e.tags == ()


def test_table_is_built_per_call_and_extensible() -> None:
    t1, t2 = build_table(), build_table()
    assert t1 is not t2 and t1.ethertype is not t2.ethertype
    t1.ethertype[0x88B5] = Udp  # pretend
    assert Decoder(t1).decode(ETH_IP_TCP_SYN[:12] + b"\x88\xb5" + bytes(8), 1).names == (
        "eth", "udp")
    assert Decoder().decode(ETH_IP_TCP_SYN[:12] + b"\x88\xb5" + bytes(8), 1).names == (
        "eth", "data")


def test_fields_and_offsets_listing() -> None:
    p = Decoder().decode(ETH_IP_TCP_SYN, 1)
    f = p["tcp"].fields()
    assert f["sport"] == 40000 and f["options"][0] == {"kind": 2, "offset": 20,
                                                       "data": b"\x05\xb4"}
    assert ("checksum", 10, 2) in Ipv4.FIELDS
