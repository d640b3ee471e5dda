"""Packet descent: which header follows which, written once.

    from rawlab.decode import descent
    table = descent.build_table()              # link type / EtherType / IP protocol -> view
    layers = descent.descend(mv, linktype, table)          # the walk, building views
    descent.names(decoder, data, linktype)     # the layer names, views only when needed
    descent.walk(data, linktype)               # where the IP and transport headers start
    descent.decode(data, linktype, hint)       # the full decode, default table (the
                                               # analyser's way back for uncommon shapes)

**The table** (:class:`DispatchTable`, built when called: nothing happens at
import) maps a link type to the first layer's view, and an EtherType (also the
SLL protocol field) and an IP protocol to the next. VLAN tags (802.1Q, 802.1ad
and the old QinQ TPIDs, :data:`VLAN_TPIDS`) belong to the Ethernet header.

**The walk** (:func:`descend`): a layer is followed by the next one only if it
is not malformed, its header was captured whole and its payload is not empty.
An unknown EtherType or protocol, or a non-first IP fragment, ends in a
:class:`~rawlab.decode.view.Raw` layer named ``data`` that keeps the number and
the bytes. At most :data:`MAX_LAYERS` layers.

**The fast walk** (:func:`walk`) applies the same rules to the bytes, without
building views, for the shapes that make up nearly every capture: Ethernet
with any number of VLAN tags, Linux cooked v1/v2 and raw IP link types, then
IPv4 (options allowed, fragments marked) or IPv6 without extension headers.
It answers None for anything else, and its callers then use :func:`descend`
(through a :class:`~rawlab.decode.dispatch.Decoder`). :func:`names` (the
protocol hierarchy's fast path) and the TCP analyser's ``feed_bytes`` use it;
``tests/unit/test_decode_descent.py`` holds both walks to the same layers.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rawlab.decode.arp import Arp
from rawlab.decode.cdp import Cdp
from rawlab.decode.chdlc import CHDLC_CDP, CHDLC_SLARP, Chdlc, Slarp
from rawlab.decode.cisco import ETH_P_AVSP, ETH_P_CMD, Avsp, CiscoMetadata
from rawlab.decode.dhcp import PORT_BOOTPC, PORT_BOOTPS, Dhcp
from rawlab.decode.dns import PORT_DNS, PORT_LLMNR, PORT_MDNS, Dns, DnsTcp, Llmnr, Mdns
from rawlab.decode.erspan import Erspan, Erspan1, Erspan3
from rawlab.decode.ethernet import ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, MAX_TAGS, VLAN_TPIDS, Ethernet
from rawlab.decode.fabricpath import ETH_P_FABRICPATH, Fabricpath
from rawlab.decode.geneve import GENEVE_PORT, Geneve
from rawlab.decode.gre import (
    GRE_ARUBA,
    GRE_CDP,
    GRE_ERSPAN_I,
    GRE_ERSPAN_II,
    GRE_ERSPAN_III,
    GRE_PPP,
    Gre,
)
from rawlab.decode.http import HTTP_PORTS, Http
from rawlab.decode.icmp import Icmp
from rawlab.decode.icmpv6 import Icmpv6
from rawlab.decode.ieee80211 import Wlan
from rawlab.decode.ipoib import Ipoib
from rawlab.decode.ipv4 import Ipv4
from rawlab.decode.ipv6 import EXT_HEADERS, NH_FRAGMENT, NH_NONE, Ipv6
from rawlab.decode.juniper import Juniper, JuniperEther
from rawlab.decode.llc import CISCO_PID_CDP, CISCO_PID_PVST, OUI_CISCO, SAP_STP, Llc, snap_key
from rawlab.decode.lldp import Lldp
from rawlab.decode.lwapp import LWAPP_DATA_PORT, Lwapp
from rawlab.decode.macsec import ETH_P_MACSEC, Macsec
from rawlab.decode.mpls import MPLS_PORT, Mpls, PwControlWord
from rawlab.decode.netlink import Netlink
from rawlab.decode.nflog import Nflog
from rawlab.decode.nsh import ETH_P_NSH, Nsh
from rawlab.decode.ntp import PORT_NTP, Ntp
from rawlab.decode.null import Loop, Null
from rawlab.decode.pbb import ETH_P_PBB, Pbb
from rawlab.decode.pktap import Pktap
from rawlab.decode.ppp import (
    PPP_CCP,
    PPP_CHAP,
    PPP_IP,
    PPP_IPCP,
    PPP_IPV6,
    PPP_IPV6CP,
    PPP_LCP,
    PPP_MPLS_MC,
    PPP_MPLS_UC,
    PPP_PAP,
    Ccp,
    Chap,
    Ipcp,
    Ipv6cp,
    Lcp,
    Pap,
    Ppp,
)
from rawlab.decode.pppoe import ETH_P_PPP_DISC, ETH_P_PPP_SES, PppoeDiscovery, PppoeSession
from rawlab.decode.quic import PORT_QUIC, Quic
from rawlab.decode.radiotap import Radiotap
from rawlab.decode.slip import Slip
from rawlab.decode.sll import LINUX_SLL_P_802_2, Sll, Sll2
from rawlab.decode.snmp import PORT_SNMP, PORT_SNMP_TRAP, Snmp
from rawlab.decode.ssh import PORT_SSH, Ssh
from rawlab.decode.stp import Stp
from rawlab.decode.tcp import Tcp
from rawlab.decode.tls import TLS_PORTS, Tls
from rawlab.decode.udp import Udp
from rawlab.decode.view import Buffer, Raw, View, as_view
from rawlab.decode.vlan import Vlan
from rawlab.decode.vntag import ETH_P_VNTAG, Vntag
from rawlab.decode.vsockmon import Vsockmon
from rawlab.decode.vxlan import VXLAN_GPE_PORT, VXLAN_PORT, Vxlan, VxlanGpe
from rawlab.records import (
    ARPHRD_IEEE80211,
    ARPHRD_IEEE80211_RADIOTAP,
    ARPHRD_NETLINK,
    CsumHint,
    LinkType,
)

if TYPE_CHECKING:
    from rawlab.decode.dispatch import Decoder, Packet

__all__ = [
    "ETH_P_ARP",
    "ETH_P_IP",
    "ETH_P_IPV6",
    "IPPROTO_ICMP",
    "IPPROTO_ICMPV6",
    "IPPROTO_IPIP",
    "IPPROTO_IPV6",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "IPPROTO_UDPLITE",
    "MAX_LAYERS",
    "VLAN_TPIDS",
    "DispatchTable",
    "build_table",
    "decode",
    "descend",
    "names",
    "walk",
]

IPPROTO_ICMP = 1
IPPROTO_IPIP = 4
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_GRE = 47
IPPROTO_ICMPV6 = 58
IPPROTO_UDPLITE = 136
IPPROTO_MPLS = 137
ETH_P_RARP = 0x8035
ETH_P_TEB = 0x6558  # Transparent Ethernet Bridging: an Ethernet frame (GRE, Geneve, NSH)
ETH_P_MPLS_UC = 0x8847
ETH_P_MPLS_MC = 0x8848
ETH_P_LLDP = 0x88CC
MAX_LAYERS = 24

ViewCtor = Callable[[memoryview], View]
#: a constructor in a port table may also be a heuristic: None means "not mine"
PortCtor = Callable[[memoryview], View | None]


def _raw_ip(mv: memoryview) -> View:
    """IPv4 or IPv6 by the version nibble (raw IP link types, MPLS, SLIP); other
    versions are not IP: data."""
    v = mv[0] >> 4 if len(mv) else 0
    if v == 4:
        return Ipv4(mv)
    if v == 6:
        return Ipv6(mv)
    return Raw(mv, None)


def _other_version(lay: Ipv4 | Ipv6) -> View:
    """An IPv4 or IPv6 header whose version nibble says otherwise (malformed, so the walk
    stopped at it): as Wireshark's "ip" dissector, an IPv4 position holding version 6 is
    IPv6; any other version is not decoded as IP but kept as data."""
    mv = lay.buf
    if type(lay) is Ipv4 and lay.version == 6:
        return Ipv6(mv)
    return Raw(mv, ETH_P_IP if type(lay) is Ipv4 else ETH_P_IPV6)


def _ppp_hdlc(mv: memoryview) -> View:
    """Link type PPP_HDLC: PPP, or Cisco HDLC when the first byte says so (0x0f, 0x8f)."""
    if len(mv) and mv[0] in (0x0F, 0x8F):
        return Chdlc(mv)
    return Ppp(mv)


@dataclass
class DispatchTable:
    """Which view decodes what. Each dict maps a number (or a name) to a view constructor.

    ``link``: pcap link type -> the first layer. ``ethertype``: EtherType (also Linux
    cooked headers' protocol, GRE's, Geneve's ...) -> next layer. ``ip_proto``: IP
    protocol -> next layer. The tables of the protocols that name what follows in
    their own numbers: ``ppp`` (PPP protocol), ``llc`` (802.2 DSAP), ``snap``
    (:func:`~rawlab.decode.llc.snap_key` of a SNAP OUI and PID that is not an
    EtherType), ``chdlc`` (Cisco HDLC's own values), ``gre`` (GRE protocols that are
    not EtherTypes: ERSPAN, PPP, Aruba). ``encap``: what a header names without a
    number ("eth", "ip" by version, "llc", "wlan", "ppp", "pwcw").

    **Ports** (``udp_port``, ``tcp_port``): a well-known port -> the view of what the
    datagram or segment carries. A port entry matches when either port is that port;
    when both have an entry, the lower port number wins, and a UDP entry that declines
    (a heuristic answering None: "not mine"; one that raises is treated as None) lets the
    higher one try (Wireshark's ``decode_udp_ports`` and ``decode_tcp_ports``: a
    well-known port beats an ephemeral one, both directions of a conversation get the
    same protocol). The per-packet walk applies the UDP entries (tunnels such as VXLAN
    and Geneve, DNS, DHCP, QUIC ...); TCP entries are a byte stream's, not a segment's:
    :mod:`rawlab.analysis.streams` reassembles those connections and builds the view on
    the segment that completes each message, cut by the view's ``pdu_len`` (TLS, HTTP,
    DNS over TCP, SSH; a view without one takes each segment's bytes as one message).
    Add entries here, one line per protocol, keyed by the IANA port.
    """

    link: dict[int, ViewCtor] = field(default_factory=dict)
    ethertype: dict[int, ViewCtor] = field(default_factory=dict)
    ip_proto: dict[int, ViewCtor] = field(default_factory=dict)
    ppp: dict[int, ViewCtor] = field(default_factory=dict)
    llc: dict[int, ViewCtor] = field(default_factory=dict)
    snap: dict[int, ViewCtor] = field(default_factory=dict)
    chdlc: dict[int, ViewCtor] = field(default_factory=dict)
    gre: dict[int, ViewCtor] = field(default_factory=dict)
    encap: dict[str, ViewCtor] = field(default_factory=dict)
    # ---- ports: UDP and TCP payloads by well-known port (see the class docstring) ----
    udp_port: dict[int, PortCtor] = field(default_factory=dict)
    tcp_port: dict[int, PortCtor] = field(default_factory=dict)
    #: the walk's steps for this table, made on first use (a transport whose port table
    #: is empty ends the walk without a call): fill the tables before decoding
    steps: dict[type, Any] | None = field(default=None, repr=False, compare=False)

    def build_steps(self) -> dict[type, Any]:
        self.steps = {k: v for k, v in _AFTER.items()
                      if k not in _PORT_VIEWS or getattr(self, _PORT_VIEWS[k])}
        return self.steps


def port_view(ports: dict[int, ViewCtor], sport: int, dport: int) -> ViewCtor | None:
    """The entry of ``ports`` for a datagram or segment between these ports (the lower
    port first, :class:`DispatchTable`), or None."""
    if sport > dport:
        sport, dport = dport, sport
    got = ports.get(sport)
    return got if got is not None else ports.get(dport)


def is_stream(ctor: ViewCtor | None) -> bool:
    """True for a view of messages that may span TCP segments (it has ``pdu_len``): not
    for the per-packet walk (a UDP entry of one is ignored)."""
    return hasattr(ctor, "pdu_len")


def build_table() -> DispatchTable:
    """The default table, built when called (nothing happens at import)."""
    table = DispatchTable(
        link={
            LinkType.NULL: Null,
            LinkType.ETHERNET: Ethernet,
            LinkType.SLIP: Slip,
            LinkType.PPP: Ppp,
            LinkType.PPP_HDLC: _ppp_hdlc,
            LinkType.ATM_RFC1483: Llc,
            LinkType.RAW: _raw_ip,
            LinkType.C_HDLC: Chdlc,
            LinkType.IEEE802_11: Wlan,
            LinkType.LOOP: Loop,
            LinkType.LINUX_SLL: Sll,
            LinkType.IEEE802_11_RADIOTAP: Radiotap,
            LinkType.JUNIPER_ATM1: Juniper,
            LinkType.USER2: Pktap,
            LinkType.JUNIPER_ETHER: JuniperEther,
            LinkType.IPV4: Ipv4,
            LinkType.IPV6: Ipv6,
            LinkType.NFLOG: Nflog,
            LinkType.IPOIB: Ipoib,
            LinkType.NETLINK: Sll,
            LinkType.PKTAP: Pktap,
            LinkType.VSOCK: Vsockmon,
            LinkType.LINUX_SLL2: Sll2,
        },
        ethertype={
            ETH_P_IP: Ipv4, ETH_P_IPV6: Ipv6, ETH_P_ARP: Arp,
            ETH_P_RARP: Arp, ETH_P_TEB: Ethernet, ETH_P_MPLS_UC: Mpls, ETH_P_MPLS_MC: Mpls,
            ETH_P_PPP_DISC: PppoeDiscovery, ETH_P_PPP_SES: PppoeSession, ETH_P_LLDP: Lldp,
            ETH_P_PBB: Pbb, ETH_P_MACSEC: Macsec, ETH_P_FABRICPATH: Fabricpath,
            ETH_P_VNTAG: Vntag, ETH_P_NSH: Nsh, ETH_P_CMD: CiscoMetadata, ETH_P_AVSP: Avsp,
            **dict.fromkeys(VLAN_TPIDS, Vlan),  # a tag after another header than Ethernet's
        },
        ip_proto={
            IPPROTO_TCP: Tcp,
            IPPROTO_UDP: Udp,
            IPPROTO_ICMP: Icmp,
            IPPROTO_ICMPV6: Icmpv6,
            IPPROTO_IPIP: Ipv4,
            IPPROTO_IPV6: Ipv6,
            IPPROTO_GRE: Gre,
            IPPROTO_MPLS: Mpls,
        },
        ppp={PPP_IP: Ipv4, PPP_IPV6: Ipv6, PPP_MPLS_UC: Mpls,
             PPP_MPLS_MC: Mpls, PPP_LCP: Lcp, PPP_IPCP: Ipcp, PPP_IPV6CP: Ipv6cp,
             PPP_CCP: Ccp, PPP_PAP: Pap, PPP_CHAP: Chap},
        llc={SAP_STP: Stp},
        snap={snap_key(OUI_CISCO, CISCO_PID_CDP): Cdp, snap_key(OUI_CISCO, CISCO_PID_PVST): Stp},
        chdlc={CHDLC_SLARP: Slarp, CHDLC_CDP: Cdp},
        gre={GRE_ERSPAN_II: Erspan, GRE_ERSPAN_I: Erspan1, GRE_ERSPAN_III: Erspan3,
             GRE_PPP: Ppp, GRE_CDP: Cdp, **dict.fromkeys(GRE_ARUBA, Wlan)},
        encap={"eth": Ethernet, "ip": _raw_ip, "llc": Llc, "wlan": Wlan, "ppp": Ppp,
               "pwcw": PwControlWord},
        # ---- ports (well-known only; one line per protocol) ----
        udp_port={VXLAN_PORT: Vxlan, VXLAN_GPE_PORT: VxlanGpe, GENEVE_PORT: Geneve,
                  MPLS_PORT: Mpls, LWAPP_DATA_PORT: Lwapp},
        tcp_port={},
    )
    _add_application_ports(table)
    return table


# ---- application protocols by port (issue 16, application half): their own block ------

def _add_application_ports(table: DispatchTable) -> None:
    """The UDP and TCP ports of the application decoders (one module each)."""
    table.udp_port.update({
        PORT_DNS: Dns, PORT_MDNS: Mdns, PORT_LLMNR: Llmnr,
        PORT_BOOTPS: Dhcp, PORT_BOOTPC: Dhcp,
        PORT_NTP: Ntp,
        PORT_SNMP: Snmp, PORT_SNMP_TRAP: Snmp,
        PORT_QUIC: Quic,
    })
    table.tcp_port.update({
        PORT_DNS: DnsTcp, PORT_MDNS: DnsTcp,
        PORT_SSH: Ssh,
        **dict.fromkeys(TLS_PORTS, Tls),
        **dict.fromkeys(HTTP_PORTS, Http),
    })


# ---- the walk over views --------------------------------------------------------------------

def _next(ctor: ViewCtor | None, payload: memoryview, key: int) -> View:
    return Raw(payload, key) if ctor is None else ctor(payload)


def _after_ethernet(lay: Any, table: DispatchTable, linktype: int, order: str) -> View | None:
    hl = lay.hlen
    key = lay.ethertype
    buf = lay.buf
    if len(buf) <= hl or key in VLAN_TPIDS:  # nothing after, or a tag cut short
        return None
    if key < 0x0600:  # an 802.3 length: LLC, bounded by it (padding excluded)
        body = buf[hl : hl + key]
        if len(body) >= 2 and body[0] == 0xFF and body[1] == 0xFF:
            return Raw(body, None)  # Novell's raw 802.3: IPX without LLC
        return Llc(body) if len(body) else None
    return _next(table.ethertype.get(key), buf[hl:], key)


def _after_sll(lay: Any, table: DispatchTable, linktype: int, order: str) -> View | None:
    hl = lay.header_len
    buf = lay.buf
    if len(buf) <= hl:
        return None
    hatype = lay.hatype
    if hatype == ARPHRD_NETLINK or (linktype == LinkType.NETLINK and type(lay) is Sll):
        return Netlink(buf[hl:], lay.protocol, order)
    if hatype == ARPHRD_IEEE80211_RADIOTAP:
        return Radiotap(buf[hl:])
    if hatype == ARPHRD_IEEE80211:
        return Wlan(buf[hl:])
    key = lay.protocol
    if key == LINUX_SLL_P_802_2:
        return Llc(buf[hl:])
    return _next(table.ethertype.get(key), buf[hl:], key)


def _after_ipv4(lay: Any, table: DispatchTable, linktype: int, order: str) -> View | None:
    hl = lay.hlen
    end = lay.end
    buf = lay.buf
    if end <= hl or len(buf) < hl:
        return None
    key = lay.proto
    if lay.frag_offset:
        return Raw(buf[hl:end], key)
    return _next(table.ip_proto.get(key), buf[hl:end], key)


def _after_ipv6(lay: Any, table: DispatchTable, linktype: int, order: str) -> View | None:
    payload = lay.payload
    if len(lay.buf) < lay.hlen or not len(payload):
        return None
    key = lay.proto
    exts = lay.ext_headers
    if exts and exts[-1].type == NH_FRAGMENT and lay.fragment.offset:
        return Raw(payload, key)
    return _next(table.ip_proto.get(key), payload, key)


def _after_view(lay: Any, table: DispatchTable, linktype: int, order: str) -> View | None:
    """The layers that say what follows them: ``next_table`` names the table (an
    attribute of :class:`DispatchTable`), ``next_key`` the entry (None: nothing to
    follow). A key the table lacks gives data that keeps the number."""
    if len(lay.buf) < lay.header_len:
        return None  # the header itself was cut short
    key = lay.next_key
    if key is None:
        return None
    payload = lay.payload
    if not len(payload):
        return None
    ctor = getattr(table, lay.next_table).get(key)
    if ctor is None:
        return Raw(payload, key if isinstance(key, int) else None)
    return ctor(payload)


def by_port(ports: dict[int, PortCtor], sport: int, dport: int,
            payload: memoryview) -> View | None:
    """The view a port table gives a payload: the lower port first, then the higher
    (Wireshark's order); None when neither claims it."""
    lo, hi = (sport, dport) if sport <= dport else (dport, sport)
    for p in (lo, hi) if lo != hi else (lo,):
        ctor = ports.get(p) if p else None
        if ctor is not None and not is_stream(ctor):  # (a stream's view: not per packet)
            try:
                got = ctor(payload)
            except Exception:
                got = None
            if got is not None:
                return got
    return None


def _after_udp(lay: Any, table: DispatchTable, linktype: int, order: str) -> View | None:
    sp, dp = lay.sport, lay.dport
    ports = table.udp_port
    if (sp not in ports and dp not in ports) or len(lay.buf) < 8:
        return None  # (ports first: the common case costs two look-ups)
    payload = lay.payload
    return by_port(ports, sp, dp, payload) if len(payload) else None


_ICMP_ERRORS = frozenset({3, 4, 5, 11, 12})  # these quote the datagram that caused them
_ICMP6_ERRORS = frozenset({1, 2, 3, 4})


def _after_icmp(lay: Any, table: DispatchTable, linktype: int, order: str) -> View | None:
    """An ICMP error quotes the IP header and first bytes of the datagram that caused it:
    decoded as a packet of its own (as tcpdump and tshark do)."""
    payload = lay.payload
    if lay.truncated or lay.type not in _ICMP_ERRORS or len(payload) < 20 or \
            payload[0] >> 4 != 4:
        return None
    quoted = Ipv4(payload)
    quoted.fragmented = 0  # a quoted header is not a fragment to reassemble
    return quoted


def _after_icmpv6(lay: Any, table: DispatchTable, linktype: int, order: str) -> View | None:
    payload = lay.payload
    if lay.truncated or lay.type not in _ICMP6_ERRORS or len(payload) < 40 or \
            payload[0] >> 4 != 6:
        return None
    quoted = Ipv6(payload)
    quoted.fragmented = 0
    return quoted


#: how to find the layer after one of these views (a view not here ends the walk)
_AFTER: dict[type, Callable[[Any, DispatchTable, int, str], View | None]] = {
    Ethernet: _after_ethernet,
    Sll: _after_sll,
    Sll2: _after_sll,
    Ipv4: _after_ipv4,
    Ipv6: _after_ipv6,
    Udp: _after_udp,
    **dict.fromkeys((
        Null, Loop, Slip, Ppp, Chdlc, Nflog, Ipoib, Pktap, JuniperEther, Radiotap, Wlan, Llc,
        Gre, Erspan, Erspan1, Erspan3, Vxlan, VxlanGpe, Geneve, Mpls, PwControlWord,
        PppoeSession, Pbb, Macsec, Fabricpath, Vntag, Nsh, CiscoMetadata, Avsp, Lwapp, Vlan,
    ), _after_view),
    Icmp: _after_icmp,
    Icmpv6: _after_icmpv6,
}
#: the transport views whose payload a port table may claim (a leaf for the fast path
#: while their table is empty, or while neither port is in it)
_PORT_VIEWS: dict[type, str] = {Udp: "udp_port", Tcp: "tcp_port"}
#: the version nibble each IP view expects
_IP_VERSION: dict[type, int] = {Ipv4: 4, Ipv6: 6}


def descend(mv: memoryview, linktype: int, table: DispatchTable,
            netlink_byteorder: str = "=") -> list[View]:
    """Every layer of ``mv`` as views (never raises; marks say what went wrong)."""
    ctor = table.link.get(linktype)
    if ctor is None:
        return [Raw(mv, linktype)]
    layers: list[View] = [ctor(mv)]
    _extend(layers, table, linktype, netlink_byteorder)
    return layers


def _extend(layers: list[View], table: DispatchTable, linktype: int, order: str) -> None:
    """Append the layers that follow ``layers[-1]`` (the walk's loop)."""
    lay = layers[-1]
    after = (table.steps or table.build_steps()).get
    while len(layers) < MAX_LAYERS:
        step = after(type(lay))
        if step is None or lay.malformed:
            break
        nxt = step(lay, table, linktype, order)
        if nxt is None:
            break
        layers.append(nxt)
        lay = nxt
    if lay.malformed and type(lay) in _IP_VERSION and lay.version != _IP_VERSION[
            type(lay)] and len(lay.buf):  # (a version nibble not captured is not wrong)
        layers[-1] = _other_version(lay)  # type: ignore[arg-type]
        if type(layers[-1]) is Ipv6:
            _extend(layers, table, linktype, order)


def above_ip(proto: int, payload: Buffer, table: DispatchTable,
             linktype: int = 0) -> list[View]:
    """The layers of a whole IP payload of protocol ``proto`` (a reassembled datagram):
    what the protocol names, and the walk on from there (never raises)."""
    mv = as_view(payload)
    if not len(mv):
        return []
    layers = [_next(table.ip_proto.get(proto), mv, proto)]
    _extend(layers, table, linktype, "=")
    return layers


# ---- the same walk on bytes, for the common shapes -------------------------------------------

#: :func:`walk`'s ``net`` when the link header is all there is
NO_NET = -1
#: :func:`walk`'s ``proto`` when the IP header is the last layer
NO_L4 = -1
#: :func:`walk`'s ``marks``
FRAG_LATER = 1  # a non-first fragment: what follows the IP header is data of ``proto``
FRAG_MORE = 2  # the first fragment of several
TSO = 4  # the IP length field is 0 (offload, or a jumbogram): ``stop`` is the capture's end

Walk = tuple[int, int, int, int, int, int]
_IP4_FIELDS = struct.Struct("!BxH2xHxB")  # version+IHL, total length, flags+fragment, protocol
_ETH_IP4_FIELDS = struct.Struct("!12xHBxH2xHxB")  # the EtherType, then those
_LINK_ONLY: Walk = (NO_NET, 0, NO_L4, 0, 0, 0)
_IP4_END: Walk = (ETH_P_IP, 0, NO_L4, 0, 0, 0)
_IP6_END: Walk = (ETH_P_IPV6, 0, NO_L4, 0, 0, 0)
# link types as plain ints: IntEnum look-ups cost on this path
_ETHERNET, _RAW, _IPV4, _IPV6 = 1, int(LinkType.RAW), int(LinkType.IPV4), int(LinkType.IPV6)
_SLL, _SLL2 = int(LinkType.LINUX_SLL), int(LinkType.LINUX_SLL2)


def walk(data: bytes, linktype: int) -> Walk | None:
    """``(net, ip, proto, l4, stop, marks)`` of a common-shape frame, or None (decode it).

    ``net``: the EtherType after the link header (ETH_P_IP / ETH_P_IPV6 for the raw
    IP link types), :data:`NO_NET` when nothing follows the link header. ``ip``: where
    that header starts. ``proto``: the IP protocol, :data:`NO_L4` when the IP header
    is the last layer (or ``net`` is not IP). ``l4``: where the transport header
    starts; ``stop``: where the datagram ends by its length field (past the capture
    when it was cut short). ``marks``: :data:`FRAG_LATER`, :data:`FRAG_MORE`, :data:`TSO`.
    """
    # Literal numbers below are the constants named beside them: a global look-up per
    # use costs on this path (it runs once per packet of `read --stats` and `tcp`).
    n = len(data)
    if linktype == 1 and n >= 34:  # Ethernet with room for IPv4: one unpack reads both
        net, vihl, tl, frag, proto = _ETH_IP4_FIELDS.unpack_from(data)
        o = 14
    else:
        net = NO_NET
    if net != 0x0800:  # ETH_P_IP
        got = _link(data, n, linktype)
        if got is None or got is _LINK_ONLY:
            return got  # type: ignore[return-value]
        net, o = got  # type: ignore[misc]
        if net != 0x0800:
            if net == ETH_P_IPV6:
                return _ipv6(data, o, n)
            if net < 0x0600:
                return None  # an 802.3 length (or Linux cooked 802.2/802.3): LLC, decode it
            return (net, o, NO_L4, 0, 0, 0)
        if n < o + 20:
            return _IP4_END if n == o or data[o] >> 4 == 4 else None
        vihl, tl, frag, proto = _IP4_FIELDS.unpack_from(data, o)
    # IPv4, as the Ipv4 view and _after_ipv4 see it (inline: the commonest case):
    # a version other than 4, an IHL below 5 or a total length below the header is
    # malformed; no payload captured (or none by the length) ends the walk too.
    if not 0x45 <= vihl <= 0x4F:
        return _IP4_END if vihl >> 4 == 4 else None  # another version: decode it
    l4 = o + (vihl & 15) * 4
    if n <= l4:
        return _IP4_END
    if tl:
        stop = o + tl
        if stop <= l4:
            return _IP4_END
        marks = 0
    else:
        stop = n
        marks = 4  # TSO
    if frag & 0x3FFF:
        marks |= 1 if frag & 0x1FFF else 2  # FRAG_LATER, FRAG_MORE
    return (0x0800, o, proto, l4, stop, marks)


def _link(data: bytes, n: int, linktype: int) -> tuple[int, int] | Walk | None:
    """(EtherType, its offset) after the link header (Ethernet and its VLAN tags, Linux
    cooked, none for raw IP); or the whole answer (_LINK_ONLY, None: decode it)."""
    if linktype == _ETHERNET:
        if n <= 14:
            return _LINK_ONLY
        net = data[12] << 8 | data[13]
        o = 14
        tags = 0
        while net in VLAN_TPIDS:
            if tags == MAX_TAGS or o + 4 > n:
                return _LINK_ONLY  # malformed, or a tag cut short
            net = data[o + 2] << 8 | data[o + 3]
            o += 4
            tags += 1
        if n <= o:
            return _LINK_ONLY
        return net, o
    if linktype in (_RAW, _IPV4, _IPV6):
        v = data[0] >> 4 if n else 0
        if linktype == _IPV4 or (linktype == _RAW and v == 4):
            return ETH_P_IP, 0
        if linktype == _IPV6 or v == 6:
            return ETH_P_IPV6, 0
        return None
    if linktype == _SLL:  # pkttype, hatype, halen (16 bits), addr[8], protocol
        if n <= 16:
            return _LINK_ONLY
        hatype, halen, net, hl = data[2] << 8 | data[3], data[4] << 8 | data[5], 14, 16
    elif linktype == _SLL2:  # protocol, reserved, ifindex, hatype, pkttype, halen, addr[8]
        if n <= 20:
            return _LINK_ONLY
        hatype, halen, net, hl = data[8] << 8 | data[9], data[11], 0, 20
    else:
        return None
    if halen > 8:
        return _LINK_ONLY  # malformed
    if hatype in (ARPHRD_NETLINK, ARPHRD_IEEE80211_RADIOTAP, ARPHRD_IEEE80211):
        return None
    return data[net] << 8 | data[net + 1], hl


def _ipv6(data: bytes, o: int, n: int) -> Walk | None:
    if n > o and data[o] >> 4 != 6:
        return None  # not IPv6 after all: decode it
    if n - o < 40:
        return _IP6_END
    nh = data[o + 6]
    if nh in EXT_HEADERS:
        return None
    pl = data[o + 4] << 8 | data[o + 5]
    if pl:
        stop = o + 40 + pl
        marks = 0
    else:
        stop = n
        marks = TSO if nh != NH_NONE else 0
    if n <= o + 40:
        return _IP6_END
    return (ETH_P_IPV6, o, nh, o + 40, stop, marks)


# ---- what the fast walk leaves undecoded: tunnels --------------------------------------------

_ENCAP: dict[str, Any] = {}


def encapsulates(w: Walk, data: bytes) -> bool:
    """Whether the default table decodes more layers after where :func:`walk` stopped:
    an EtherType or IP protocol of a tunnel (MPLS, PPPoE, GRE, IP in IP ...), or a UDP
    datagram whose port a tunnel claims (VXLAN, Geneve ...). The TCP analyser's fast
    path then decodes the packet, so a tunnelled connection is analysed too."""
    proto = w[2]
    if proto == IPPROTO_UDP:
        try:
            sp, dp = _PORTS.unpack_from(data, w[3])
        except struct.error:
            return False
        ports = tunnel_udp_ports()
        return (sp in ports or dp in ports) and not w[5] & FRAG_LATER
    enc = _ENCAP or _encap_init()
    if proto == NO_L4:
        return w[0] in enc["net"]
    return proto in enc["proto"] and not w[5] & FRAG_LATER


def tunnel_udp_ports() -> frozenset[int]:
    """The UDP ports a tunnel of the default table claims (VXLAN, Geneve ...): what
    :func:`encapsulates` decodes further."""
    return _ENCAP.get("udp") or _encap_init()["udp"]


def _encap_init() -> dict[str, Any]:
    t = build_table()
    _ENCAP["net"] = frozenset(k for k, c in t.ethertype.items() if k not in _IP_VIEW and (
        not isinstance(c, type) or c in _AFTER))
    _ENCAP["proto"] = frozenset(k for k, c in t.ip_proto.items()
                                if k not in (IPPROTO_UDP, IPPROTO_TCP)
                                and (not isinstance(c, type) or c in _AFTER))
    _ENCAP["udp"] = frozenset(k for k, c in t.udp_port.items()  # tunnels, not applications
                              if not isinstance(c, type) or c in _AFTER)
    return _ENCAP


# ---- names: the protocol hierarchy's fast path -----------------------------------------------

_LINK_CTORS: dict[int, ViewCtor] = {
    _ETHERNET: Ethernet, _SLL: Sll, _SLL2: Sll2, _RAW: _raw_ip, _IPV4: Ipv4, _IPV6: Ipv6}
_IP_VIEW: dict[int, ViewCtor] = {ETH_P_IP: Ipv4, ETH_P_IPV6: Ipv6}
_IP_NAME = {ETH_P_IP: Ipv4.name, ETH_P_IPV6: Ipv6.name}


def names(decoder: Decoder, data: bytes, linktype: int) -> tuple[str, ...]:
    """The layer names ``decoder.decode(data, linktype)`` gives, computed by :func:`walk`
    where it can (one dictionary look-up per packet after the first of each shape, and
    for UDP and TCP one per port pair: :meth:`Decoder.port_names
    <rawlab.decode.dispatch.Decoder>`). It is :meth:`Decoder.path
    <rawlab.decode.dispatch.Decoder.path>`. A fragment goes to ``decoder.fragments`` when
    that is set (IP reassembly: :mod:`rawlab.analysis.reassembly`), else it is named per
    packet. A TCP segment with payload on a stream protocol's port (TLS, HTTP, DNS over
    TCP) gets no application name here (only reassembly can tell which frame completes a
    message): ``decoder.stream`` is set to its :func:`walk` answer for the caller that
    reassembles (``read --stats``), when its first byte may start a message or
    ``decoder.streams_live`` (the caller follows connections that may continue one)."""
    w = walk(data, linktype)
    if w is not None:
        key = (linktype, w[0], w[2], w[5] & 3)  # & (FRAG_LATER | FRAG_MORE)
        got = decoder.shapes.get(key)
        if got is None:
            got = decoder.shapes[key] = _shape_names(key, decoder)
        if got:
            leaf = got[-1]
            if leaf is not _UDP and leaf is not _TCP:
                return got
            # the application layer after the ports (UDP: as _after_udp finds it; TCP: a
            # stream's, see DispatchTable):
            # which entry (if any) a port pair leads to is remembered per pair
            l4 = w[3]
            if w[4] - l4 <= (8 if leaf is _UDP else 20):
                return got  # no payload by the IP length (a pure ACK without options...)
            pair = data[l4 : l4 + 4]
            pairs = decoder.port_pairs[leaf is _TCP]
            app = pairs.get(pair)
            if app is None:
                app = _pair_entry(decoder, pair, leaf is _TCP)
            if not app:
                return got  # no entry for either port: the common case, kept short
            n = len(data)
            end = w[4] if w[4] < n else n
            if leaf is _UDP:  # the payload, as the Udp view bounds it
                if end - l4 <= 8 or type(app) is bytes:
                    return got  # none captured (or a stream entry on UDP: none either)
                ln = data[l4 + 4] << 8 | data[l4 + 5]
                if 0 < ln <= 8:  # malformed, or no payload by the length
                    return got
            else:
                if end - l4 < 20:
                    return got  # the header cut short
                off = data[l4 + 12]
                if off < 0x50 or end - l4 <= (off >> 4) * 4:
                    return got  # malformed (data offset < 5), or no payload
                if type(app) is bytes:  # a stream protocol: the reassembler's
                    # (Decoder.stream says where) when the payload may start a message,
                    # or may continue one of a connection the reassembler follows
                    if app[data[l4 + (off >> 4) * 4]] or decoder.streams_live:
                        decoder.stream = w
                    return got
            if app != "_":
                return (*got, app)
        elif w[5] & 3 and decoder.fragments is not None:
            return decoder.fragments(data, linktype)
    return decoder.decode(data, linktype).names


_UDP, _TCP = Udp.name, Tcp.name
_PORTS = struct.Struct("!HH")
MAX_PORT_PAIRS = 1 << 16


def _pair_entry(decoder: Decoder, pair: bytes, tcp: bool) -> str | bytes:
    """What :meth:`Decoder.port_names` holds for the entry a port pair leads to (the lower
    port first), "" for none; remembered in ``decoder.port_pairs``."""
    if len(pair) < 4:
        return ""
    sp, dp = _PORTS.unpack(pair)
    ports = decoder.port_names[tcp]
    lo, hi = (sp, dp) if sp <= dp else (dp, sp)
    got = ports.get(lo)
    if got is None:
        got = ports.get(hi, "")
    pairs = decoder.port_pairs[tcp]
    if len(pairs) >= MAX_PORT_PAIRS:
        pairs.clear()
    pairs[pair] = got
    return got


def port_names(ports: dict[int, ViewCtor], tcp: bool = False) -> dict[int, str | bytes]:
    """port -> the name of the view the per-packet walk puts after the transport layer;
    "_" for a constructor without a fixed name (only decoding can tell); for a stream
    protocol (``tcp``: every TCP entry; the walk adds none) its view's ``FIRST_BYTES``:
    256 bytes, non-zero for the values a message may start with (all, when the view does
    not say)."""
    out: dict[int, str | bytes] = {}
    for port, ctor in ports.items():
        if tcp or is_stream(ctor):
            out[port] = getattr(ctor, "FIRST_BYTES", b"\x01" * 256)
        elif isinstance(ctor, type) and ctor not in _AFTER:
            out[port] = getattr(ctor, "name", "_")
        else:  # a heuristic, or a tunnel (layers follow): only decoding can tell
            out[port] = "_"
    return out


def _leaf_name(ctor: ViewCtor | None) -> str | None:
    """The name of the view a walk ends with; None when the walk would go on after it
    (UDP and TCP: the port step of :func:`names` follows)."""
    if ctor is None:
        return Raw.name
    if isinstance(ctor, type) and (ctor not in _AFTER or ctor in _PORT_VIEWS):
        return getattr(ctor, "name", None)
    return None


def _shape_names(key: tuple[int, int, int, int], decoder: Decoder) -> tuple[str, ...]:
    """The names for one shape :func:`walk` found; () when the caller must decode: the
    table holds other views than the walk assumes (a caller's own entries), or the
    packet is a fragment and ``decoder.fragments`` is set. (What a UDP or TCP port leads
    to is :func:`names`' per port pair.)"""
    table = decoder.table
    linktype, net, proto, frag = key
    first = table.link.get(linktype)
    if first is not _LINK_CTORS[linktype]:
        return ()
    if first in (Ethernet, Sll, Sll2):
        out: tuple[str, ...] = (Ethernet.name if first is Ethernet else Sll.name,)
        if net == NO_NET:
            return out
        ip = table.ethertype.get(net)
        if net not in _IP_VIEW:
            leaf = _leaf_name(ip)
            return (*out, leaf) if leaf else ()
        if ip is not _IP_VIEW[net]:
            return ()
    else:  # raw IP link types: the IP header comes first
        out = ()
    out = (*out, _IP_NAME[net])
    if proto == NO_L4:
        return out
    if frag and decoder.fragments is not None:
        return ()
    if frag & FRAG_LATER:
        return (*out, Raw.name)
    ctor = table.ip_proto.get(proto)
    leaf = _leaf_name(ctor)
    return (*out, leaf) if leaf else ()


# ---- the full decode, for callers that only have bytes ---------------------------------------

_DEFAULT: list[Decoder] = []


def decode(data: Buffer, linktype: int, hint: int = 0) -> Packet:
    """Every layer of ``data`` with the default table (one Decoder, made on first use)."""
    if not _DEFAULT:
        from rawlab.decode.dispatch import Decoder

        _DEFAULT.append(Decoder())
    return _DEFAULT[0].decode(data, linktype, CsumHint(hint))
