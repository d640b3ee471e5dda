"""Frames of the link-layer and tunnel protocols the tcpdump corpus lacks (PBB, VN-Tag,
FabricPath, NVGRE, Aruba GRE, PPPoE over QinQ, IP in IP, MPLS pseudowires ...), built
byte by byte (scapy where it has the layer), for test_l2_tshark.py and the tunnel tests.

Explicit MAC addresses everywhere: scapy must never resolve one.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

from rawlab.pcap.writer import PcapngWriter

MAC1 = "02:00:00:00:00:01"
MAC2 = "02:00:00:00:00:02"


def _eth(etype: int, dst: bytes = b"\x02" + bytes(4) + b"\x02",
         src: bytes = b"\x02" + bytes(4) + b"\x01") -> bytes:
    return dst + src + struct.pack("!H", etype)


def _ip_tcp(sport: int = 40000, dport: int = 80, payload: bytes = b"hello") -> bytes:
    from scapy.all import IP, TCP

    return bytes(IP(src="10.9.0.1", dst="10.9.0.2") / TCP(sport=sport, dport=dport, flags="PA",
                                                           seq=1000, ack=2000) / payload)


def _ip_udp() -> bytes:
    from scapy.all import IP, UDP

    return bytes(IP(src="10.9.0.3", dst="10.9.0.4") / UDP(sport=5000, dport=6000) / b"data")


def _ip6_tcp() -> bytes:
    from scapy.all import TCP, IPv6

    return bytes(IPv6(src="fd00::1", dst="fd00::2") / TCP(sport=40001, dport=443, flags="S"))


def _inner_eth(body: bytes, etype: int = 0x0800) -> bytes:
    return _eth(etype, b"\x02\x00\x00\x00\x01\x02", b"\x02\x00\x00\x00\x01\x01") + body


def _outer_ip(proto: int, body: bytes) -> bytes:
    from scapy.all import IP

    return bytes(IP(src="192.0.2.1", dst="192.0.2.2", proto=proto) / body)


def _gre(flags: int, proto: int, opts: bytes, body: bytes) -> bytes:
    return struct.pack("!HH", flags, proto) + opts + body


def ethernet_frames() -> list[bytes]:
    """Link type 1."""
    from scapy.all import IP, STP, UDP, Dot3, Ether, IPv6
    from scapy.contrib.cdp import CDPMsgDeviceID, CDPMsgPortID, CDPv2_HDR
    from scapy.contrib.geneve import GENEVE
    from scapy.contrib.lldp import (
        LLDPDU,
        LLDPDUChassisID,
        LLDPDUEndOfLLDPDU,
        LLDPDUPortID,
        LLDPDUSystemName,
        LLDPDUTimeToLive,
    )
    from scapy.layers.l2 import LLC, SNAP
    from scapy.layers.vxlan import VXLAN

    tcp = _ip_tcp()
    return [
        # 802.1ah PBB: I-TAG (prio 3, isid 0x123456), customer addresses, IPv4/UDP
        _eth(0x88E7) + struct.pack("!I", 3 << 29 | 0x123456) + bytes.fromhex(
            "0a0000000002" "0a0000000001") + b"\x08\x00" + _ip_udp(),
        # VN-Tag: dir, dst vif 5, src vif 9, then IPv4/TCP
        _eth(0x8926) + struct.pack("!IH", 1 << 31 | 5 << 16 | 9, 0x0800) + tcp,
        # FabricPath: outer hierarchical MACs, 0x8903, ftag 1 ttl 32, the customer frame
        _eth(0x8903, bytes.fromhex("020000c80101"), bytes.fromhex("020000c80202"))
        + struct.pack("!H", 1 << 6 | 32) + _inner_eth(tcp),
        # NVGRE: GRE K, protocol 0x6558, VSID 0x5000 / flow 7, the tenant's frame
        _eth(0x0800) + _outer_ip(47, _gre(0x2000, 0x6558, struct.pack("!I", 0x5000 << 8 | 7),
                                          _inner_eth(tcp))),
        # GRE with checksum, key and sequence number, carrying IPv4
        _eth(0x0800) + _outer_ip(47, _gre(0xB000, 0x0800, struct.pack("!HHII", 0x1234, 0, 42, 7),
                                          tcp)),
        # PPTP's enhanced GRE (version 1): key (length, call id), sequence, ack; PPP/IPv4
        _eth(0x0800) + _outer_ip(47, _gre(0x3081, 0x880B, struct.pack("!HHII", 2 + len(tcp), 9,
                                                                        5, 4),
                                          b"\x00\x21" + tcp)),
        # Aruba's WLAN GRE (0x8200): an 802.11 data frame to the DS, LLC/SNAP, IPv4/UDP
        _eth(0x0800) + _outer_ip(47, _gre(0, 0x8200, b"", bytes.fromhex(
            "0801" "0000" "0a0000000003" "0a0000000004" "0a0000000005" "1000")
            + bytes.fromhex("aaaa03000000") + b"\x08\x00" + _ip_udp())),
        # ERSPAN type II over GRE, mirroring a VLAN-tagged frame
        _eth(0x0800) + _outer_ip(47, _gre(0x1000, 0x88BE, struct.pack("!I", 77),
                                          struct.pack("!HHI", 1 << 12 | 10, 3 << 13 | 100, 9)
                                          + _eth(0x8100) + struct.pack("!HH", 20, 0x0800) + tcp)),
        # PPPoE session over QinQ (802.1ad + 802.1Q), PPP IPv4, TCP
        _eth(0x88A8) + struct.pack("!HHHH", 100, 0x8100, 200, 0x8864)
        + struct.pack("!BBHH", 0x11, 0, 0x2A, 2 + len(tcp)) + b"\x00\x21" + tcp,
        # PPPoE discovery PADI with a service name and host-uniq
        _eth(0x8863) + struct.pack("!BBHH", 0x11, 0x09, 0, 12)
        + struct.pack("!HH", 0x0101, 0) + struct.pack("!HH", 0x0103, 4) + b"\x01\x02\x03\x04",
        # IP in IP, IPv6 in IPv4 (6in4), IPv6 in IPv6
        _eth(0x0800) + _outer_ip(4, tcp),
        _eth(0x0800) + _outer_ip(41, _ip6_tcp()),
        _eth(0x86DD) + bytes(IPv6(src="fd00::a", dst="fd00::b", nh=41) / IPv6(
            src="fd00::1", dst="fd00::2") / UDP(sport=1, dport=2)),
        # MPLS: two labels then IPv6; one label, a PW control word, an Ethernet frame
        _eth(0x8847) + struct.pack("!II", 100 << 12 | 64, 200 << 12 | 1 << 8 | 63) + _ip6_tcp(),
        _eth(0x8847) + struct.pack("!II", 300 << 12 | 1 << 8 | 64, 0) + _inner_eth(tcp),
        # VXLAN over IPv6 with TCP inside; Geneve with an option
        bytes(Ether(src=MAC1, dst=MAC2) / IPv6(src="fd00::10", dst="fd00::11") / UDP(
            sport=50000, dport=4789) / VXLAN(vni=4242) / Ether(src=MAC1, dst=MAC2,
                                                                type=0x0800) / tcp),
        bytes(Ether(src=MAC1, dst=MAC2) / IP(src="192.0.2.5", dst="192.0.2.6") / UDP(
            sport=50001, dport=6081) / GENEVE(vni=77, proto=0x6558, options=bytes.fromhex(
                "0102800100000000")) / Ether(src=MAC1, dst=MAC2, type=0x0800) / tcp),
        # VXLAN-GPE carrying IPv4; NSH (MD type 2) carrying Ethernet
        _eth(0x0800) + _gpe(),
        _eth(0x894F) + struct.pack("!HBBI", 0x0FC4, 2, 3, 0x000AAA << 8 | 254)
        + struct.pack("!HBB", 0x0001, 0x02, 4) + b"\x0a\x0b\x0c\x0d" + _inner_eth(tcp),
        # MACsec: integrity only (with SCI) and encrypted (E and C set)
        _eth(0x88E5) + struct.pack("!BBI", 0x20, 0, 9) + bytes.fromhex("0a00000000010001")
        + b"\x08\x00" + tcp + bytes(range(16)),
        _eth(0x88E5) + struct.pack("!BBI", 0x2C | 1, 0, 10) + bytes.fromhex("0a00000000010001")
        + bytes(40) + bytes(range(16)),
        # LLDP, CDP (SNAP), STP topology change over 802.3
        bytes(Ether(src=MAC1, dst="01:80:c2:00:00:0e") / LLDPDU() / LLDPDUChassisID(
            subtype=4, id=MAC1) / LLDPDUPortID(subtype=5, id=b"eth0") / LLDPDUTimeToLive(
            ttl=120) / LLDPDUSystemName(system_name=b"switch-a") / LLDPDUEndOfLLDPDU()),
        bytes(Dot3(src=MAC1, dst="01:00:0c:cc:cc:cc") / LLC() / SNAP(OUI=0x0C, code=0x2000)
              / CDPv2_HDR(vers=2, ttl=180, msg=[CDPMsgDeviceID(val=b"router-1"),
                                                CDPMsgPortID(iface=b"Gi0/1")])),
        bytes(Dot3(src=MAC1, dst="01:80:c2:00:00:00") / LLC(dsap=0x42, ssap=0x42, ctrl=3)
              / STP(bpdutype=0x80)),
        bytes(Dot3(src=MAC1, dst="01:80:c2:00:00:00") / LLC(dsap=0x42, ssap=0x42, ctrl=3)
              / STP(version=2, bpdutype=2, bpduflags=0x3C, rootid=4096, bridgeid=32768,
                    portid=0x8001, age=1, maxage=20, hellotime=2, fwddelay=15) / b"\x00"),
    ]


def _gpe() -> bytes:
    from scapy.all import IP, UDP

    inner = _ip_udp()
    gpe = struct.pack("!BHBI", 0x0C, 0, 1, 55 << 8)
    return bytes(IP(src="192.0.2.7", dst="192.0.2.8") / UDP(sport=50002, dport=4790)
                 / (gpe + inner))


def other_frames() -> list[tuple[int, bytes]]:
    """(link type, frame) for the other link types."""
    from scapy.all import IP, UDP, Ether
    from scapy.layers.dot11 import Dot11, Dot11Beacon, Dot11Elt, Dot11QoS, RadioTap
    from scapy.layers.l2 import LLC, SNAP
    from scapy.layers.vxlan import VXLAN

    radiotap = bytes(RadioTap(present="Flags+Rate+Channel+dBm_AntSignal", Flags=0, Rate=12,
                              ChannelFrequency=2437, ChannelFlags=0xA0, dBm_AntSignal=-42))
    qos_data = bytes(Dot11(type=2, subtype=8, FCfield=1, addr1="0a:00:00:00:00:01",
                           addr2="0a:00:00:00:00:02", addr3="0a:00:00:00:00:03", SC=0x120)
                     / Dot11QoS(TID=5) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(code=0x0800)
                     / IP(src="10.9.0.1", dst="10.9.0.2") / UDP(sport=1, dport=2))
    beacon = bytes(Dot11(type=0, subtype=8, addr1="ff:ff:ff:ff:ff:ff",
                         addr2="0a:00:00:00:00:09", addr3="0a:00:00:00:00:09")
                   / Dot11Beacon(cap=0x0431, beacon_interval=100)
                   / Dot11Elt(ID=0, info=b"rawlab-lab") / Dot11Elt(ID=1, info=b"\x82\x84"))
    ack = bytes(Dot11(type=1, subtype=13, addr1="0a:00:00:00:00:02"))
    tcp6 = _ip6_tcp()
    nflog_pl = tcp6
    nflog = (struct.pack("!BBH", 10, 0, 3)
             + struct.pack("<HH", 8, 1) + struct.pack("!HBB", 0x86DD, 2, 0)
             + struct.pack("<HH", 8, 4) + struct.pack("!I", 7)
             + struct.pack("<HH", 4 + len(nflog_pl), 9) + nflog_pl
             + bytes(-len(nflog_pl) % 4))
    return [
        (0, struct.pack("<I", 30) + tcp6),  # BSD loopback (Darwin's AF_INET6)
        (108, struct.pack("!I", 2) + _ip_tcp()),  # OpenBSD loopback
        (9, b"\xff\x03\x00\x57" + tcp6),  # PPP, IPv6
        (9, b"\xc0\x21\x09\x01\x00\x08\x12\x34\x56\x78"),  # PPP LCP echo request
        (50, b"\x0f\x00\x08\x00" + _ip_tcp()),  # PPP_HDLC holding a Cisco HDLC frame
        (104, b"\x8f\x00\x80\x35" + struct.pack("!IIIH", 2, 5, 6, 0xFFFF)),  # SLARP
        (127, radiotap + qos_data),
        (127, radiotap + beacon),
        (105, ack),
        (239, nflog),
        (113, struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6 + bytes(2), 4)  # cooked 802.2
         + bytes.fromhex("424203") + bytes(4) + b"\x80"),
        (101, bytes(IP(src="192.0.2.9", dst="192.0.2.10") / UDP(sport=49000, dport=4789)
                    / VXLAN(vni=9) / Ether(src=MAC1, dst=MAC2, type=0x0800) / _ip_tcp())),
    ]


def write(path: Path) -> Path:
    """Every frame above into one pcapng (one interface per link type)."""
    with PcapngWriter(path) as w:
        ifs: dict[int, int] = {}
        frames = [(1, f) for f in ethernet_frames()] + other_frames()
        for i, (lt, data) in enumerate(frames):
            if lt not in ifs:
                ifs[lt] = w.add_interface(lt, f"lt{lt}")
            w.write(ifs[lt], 1_700_000_000_000_000_000 + i * 1000, data)
    return path


BUILDERS: dict[str, Callable[[], object]] = {"ethernet": ethernet_frames, "other": other_frames}
