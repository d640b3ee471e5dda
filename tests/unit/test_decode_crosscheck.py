"""View, construct Struct and scapy agree on every field (hypothesis-built packets)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from construct import Container, ListContainer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rawlab.decode import arp, ethernet, icmp, icmpv6, ipv4, ipv6, sll, tcp, udp
from rawlab.decode.checksum import Verdict
from rawlab.decode.dispatch import Decoder
from rawlab.decode.view import View

pytestmark = pytest.mark.unit

SCHEMAS = {
    ethernet.Ethernet: ethernet.ETHERNET_HEADER,
    ipv4.Ipv4: ipv4.IPV4_HEADER,
    ipv6.Ipv6: ipv6.IPV6_HEADER,
    tcp.Tcp: tcp.TCP_HEADER,
    udp.Udp: udp.UDP_HEADER,
    icmp.Icmp: icmp.ICMP_HEADER,
    icmpv6.Icmpv6: icmpv6.ICMPV6_HEADER,
    arp.Arp: arp.ARP_PACKET,
    sll.Sll: sll.SLL_HEADER,
    sll.Sll2: sll.SLL2_HEADER,
}
DEC = Decoder()
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def flat(c: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in c.items():
        if k.startswith("_"):
            continue
        if isinstance(v, Container):
            out.update(flat(v))
        elif not isinstance(v, ListContainer):
            out[k] = v
    return out


def check_construct(view: View) -> None:
    schema = SCHEMAS[type(view)]
    parsed = flat(schema.parse(bytes(view.buf)))
    names = {n for n, _o, _s in view.FIELDS} | {"sha", "spa", "tha", "tpa"}
    compared = 0
    for k, v in parsed.items():
        if k in names:
            assert getattr(view, k) == v, (type(view).__name__, k)
            compared += 1
    assert compared >= len(view.FIELDS)


def mac(s: str) -> bytes:
    return bytes.fromhex(s.replace(":", ""))


def v4(s: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, s)


def v6(s: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, s)


def _opt_len(kind: Any, value: Any) -> int:
    fixed = {"MSS": 4, "WScale": 3, "SAckOK": 2, "Timestamp": 10, "NOP": 1}
    if kind in fixed:
        return fixed[kind]
    if kind == "SAck":
        return 2 + 4 * len(value)
    return 2 + len(value)


TCP_OPTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("MSS"), st.integers(0, 0xFFFF)),
        st.tuples(st.just("WScale"), st.integers(0, 14)),
        st.just(("SAckOK", b"")),
        st.tuples(st.just("Timestamp"), st.tuples(st.integers(0, 2**32 - 1),
                                                  st.integers(0, 2**32 - 1))),
        st.just(("NOP", None)),
        st.tuples(st.just("SAck"), st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=4)
                  .map(lambda x: tuple(x[: len(x) // 2 * 2]))),
        st.tuples(st.integers(30, 30), st.binary(min_size=2, max_size=6)),  # MPTCP
        st.tuples(st.integers(200, 250), st.binary(max_size=4)),  # unknown kinds
    ),
    max_size=4,
).filter(lambda opts: sum(_opt_len(k, v) for k, v in opts) <= 40)  # what fits in a header

addr4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
addr6 = st.binary(min_size=16, max_size=16).map(
    lambda b: socket.inet_ntop(socket.AF_INET6, b))
macs = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))


@st.composite
def packets(draw: st.DrawFn) -> bytes:
    from scapy.all import ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, ICMPv6EchoRequest, IPv6, Raw
    from scapy.layers.inet6 import IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting

    p = Ether(dst=draw(macs), src=draw(macs))
    for _ in range(draw(st.integers(0, 2))):
        p = p / Dot1Q(prio=draw(st.integers(0, 7)), dei=draw(st.integers(0, 1)),
                      vlan=draw(st.integers(0, 4095)))
    net = draw(st.sampled_from(["ip", "ip6", "arp"]))
    if net == "arp":
        return bytes(p / ARP(op=draw(st.integers(1, 2)), hwsrc=draw(macs), psrc=draw(addr4),
                             hwdst=draw(macs), pdst=draw(addr4)))
    if net == "ip":
        opts = draw(st.sampled_from([b"", b"\x01\x01\x01\x01", b"\x94\x04\x00\x00",
                                     b"\x07\x07\x04" + bytes(4) + b"\x00"]))
        p = p / IP(src=draw(addr4), dst=draw(addr4), tos=draw(st.integers(0, 255)),
                   id=draw(st.integers(0, 0xFFFF)), flags=draw(st.integers(0, 2)),
                   ttl=draw(st.integers(0, 255)), options=opts)
    else:
        p = p / IPv6(src=draw(addr6), dst=draw(addr6), tc=draw(st.integers(0, 255)),
                     fl=draw(st.integers(0, 0xFFFFF)), hlim=draw(st.integers(0, 255)))
        for ext in draw(st.lists(st.sampled_from(["hbh", "dst", "rt"]), max_size=2)):
            p = p / {"hbh": IPv6ExtHdrHopByHop, "dst": IPv6ExtHdrDestOpt,
                     "rt": IPv6ExtHdrRouting}[ext]()
    l4 = draw(st.sampled_from(["tcp", "udp", "icmp"]))
    if l4 == "tcp":
        p = p / TCP(sport=draw(st.integers(0, 0xFFFF)), dport=draw(st.integers(0, 0xFFFF)),
                    seq=draw(st.integers(0, 2**32 - 1)), ack=draw(st.integers(0, 2**32 - 1)),
                    flags=draw(st.integers(0, 0x1FF)), window=draw(st.integers(0, 0xFFFF)),
                    urgptr=draw(st.integers(0, 0xFFFF)), options=draw(TCP_OPTIONS))
    elif l4 == "udp":
        p = p / UDP(sport=draw(st.integers(0, 0xFFFF)), dport=draw(st.integers(0, 0xFFFF)))
    elif net == "ip":
        p = p / ICMP(type=8, id=draw(st.integers(0, 0xFFFF)), seq=draw(st.integers(0, 0xFFFF)))
    else:
        p = p / ICMPv6EchoRequest(id=draw(st.integers(0, 0xFFFF)),
                                  seq=draw(st.integers(0, 0xFFFF)))
    return bytes(p / Raw(draw(st.binary(max_size=40))))


def scapy_option_kinds(opts: list[tuple[Any, Any]]) -> list[int]:
    names = {"EOL": 0, "NOP": 1, "MSS": 2, "WScale": 3, "SAckOK": 4, "SAck": 5, "Timestamp": 8}
    return [names[k] if isinstance(k, str) and k in names else k for k, _v in opts]


@SETTINGS
@given(packets())
def test_view_construct_scapy_agree(data: bytes) -> None:
    from scapy.all import ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, ICMPv6EchoRequest, IPv6

    pkt = DEC.decode(data, 1)
    # the headers this test builds are whole and sound (random payload on a port with an
    # application decoder may be a broken message of it: tests/unit/test_app_robust.py)
    assert not any(lay.truncated or lay.malformed for lay in pkt.layers if not lay.application)
    for lay in pkt.layers:
        if type(lay) in SCHEMAS:
            check_construct(lay)
    s = Ether(data)
    eth = pkt["eth"]
    assert (eth.dst, eth.src, eth.type) == (mac(s.dst), mac(s.src), s.type)
    tags = []
    layer = s.payload
    while isinstance(layer, Dot1Q):
        tags.append((layer.prio, layer.dei, layer.vlan))
        layer = layer.payload
    assert [(t.pcp, t.dei, t.vid) for t in eth.tags] == tags
    if ARP in s:
        a, sa = pkt["arp"], s[ARP]
        assert (a.htype, a.ptype, a.hlen, a.plen, a.op) == (
            sa.hwtype, sa.ptype, sa.hwlen, sa.plen, sa.op)
        assert (a.sha, a.spa, a.tha, a.tpa) == (
            mac(sa.hwsrc), v4(sa.psrc), mac(sa.hwdst), v4(sa.pdst))
        return
    if IP in s:
        ip, si = pkt["ipv4"], s[IP]
        assert (ip.version, ip.ihl, ip.tos, ip.total_length, ip.id, ip.flags, ip.frag_offset,
                ip.ttl, ip.proto, ip.checksum) == (
            si.version, si.ihl, si.tos, si.len, si.id, int(si.flags), si.frag, si.ttl,
            si.proto, si.chksum)
        assert (ip.src, ip.dst) == (v4(si.src), v4(si.dst))
        assert [o.type for o in ip.options] == [bytes(o)[0] for o in si.options]
    else:
        ip, si = pkt["ipv6"], s[IPv6]
        assert (ip.version, ip.traffic_class, ip.flow_label, ip.payload_length,
                ip.next_header, ip.hop_limit) == (si.version, si.tc, si.fl, si.plen, si.nh,
                                                  si.hlim)
        assert (ip.src, ip.dst) == (v6(si.src), v6(si.dst))
    if TCP in s:
        t, st_ = pkt["tcp"], s[TCP]
        assert (t.sport, t.dport, t.seq, t.ack, t.dataofs, t.reserved, t.flags, t.window,
                t.checksum, t.urgptr) == (
            st_.sport, st_.dport, st_.seq, st_.ack, st_.dataofs, st_.reserved, int(st_.flags),
            st_.window, st_.chksum, st_.urgptr)
        assert t.flag_str == str(st_.flags)
        assert [o.kind for o in t.options] == scapy_option_kinds(st_.options)
        for (name, val), o in zip(st_.options, t.options, strict=True):
            if name in ("MSS", "WScale", "Timestamp"):
                assert o.value() == val
            elif name == "SAck":
                assert [x for pair in o.value() for x in pair] == list(val)
            elif isinstance(name, int):
                assert o.data == val
        assert bytes(t.payload) == bytes(st_.payload)
    elif UDP in s:
        u, su = pkt["udp"], s[UDP]
        assert (u.sport, u.dport, u.length, u.checksum) == (su.sport, su.dport, su.len, su.chksum)
        assert bytes(u.payload) == bytes(su.payload)
    elif ICMP in s:
        m, sm = pkt["icmp"], s[ICMP]
        assert (m.type, m.code, m.checksum, m.id, m.seq) == (
            sm.type, sm.code, sm.chksum, sm.id, sm.seq)
    else:
        m, sm = pkt["icmpv6"], s[ICMPv6EchoRequest]
        assert (m.type, m.code, m.checksum, m.id, m.seq) == (
            sm.type, sm.code, sm.cksum, sm.id, sm.seq)
    # scapy computed every checksum: all must verify (UDP may legitimately be 0 → unverified)
    for cs in pkt.checksums:
        assert cs is None or cs.verdict in (Verdict.GOOD, Verdict.UNVERIFIED), cs
    assert DEC.path(data, 1) == pkt.names


@SETTINGS
@given(st.integers(0, 5), st.integers(0, 0xFFFF), st.integers(0, 4), st.binary(min_size=8,
                                                                               max_size=8))
def test_sll_headers_agree_with_scapy(pkttype: int, hatype: int, halen: int, addr: bytes) -> None:
    from scapy.layers.l2 import CookedLinux, CookedLinuxV2

    data = bytes(CookedLinux(pkttype=pkttype, lladdrtype=hatype, lladdrlen=halen, src=addr,
                             proto=0x0800))
    s = sll.Sll(data)
    check_construct(s)
    sc = CookedLinux(data)
    assert (s.pkttype, s.hatype, s.halen, s.addr, s.protocol) == (
        sc.pkttype, sc.lladdrtype, sc.lladdrlen, sc.src, sc.proto)
    data2 = bytes(CookedLinuxV2(proto=0x86DD, ifindex=hatype * 7, lladdrtype=hatype,
                                pkttype=pkttype, lladdrlen=halen, src=addr))
    s2 = sll.Sll2(data2)
    check_construct(s2)
    sc2 = CookedLinuxV2(data2)
    assert (s2.protocol, s2.ifindex, s2.hatype, s2.pkttype, s2.halen, s2.addr) == (
        sc2.proto, sc2.ifindex, sc2.lladdrtype, sc2.pkttype, sc2.lladdrlen, sc2.src)
