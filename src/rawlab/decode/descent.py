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
from rawlab.decode.dhcp import PORT_BOOTPC, PORT_BOOTPS, Dhcp
from rawlab.decode.dns import PORT_DNS, PORT_LLMNR, PORT_MDNS, Dns, DnsTcp, Llmnr, Mdns
from rawlab.decode.ethernet import ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, MAX_TAGS, VLAN_TPIDS, Ethernet
from rawlab.decode.http import HTTP_PORTS, Http
from rawlab.decode.icmp import Icmp
from rawlab.decode.icmpv6 import Icmpv6
from rawlab.decode.ipv4 import Ipv4
from rawlab.decode.ipv6 import EXT_HEADERS, NH_FRAGMENT, NH_NONE, Ipv6
from rawlab.decode.netlink import Netlink
from rawlab.decode.ntp import PORT_NTP, Ntp
from rawlab.decode.quic import PORT_QUIC, Quic
from rawlab.decode.sll import Sll, Sll2
from rawlab.decode.snmp import PORT_SNMP, PORT_SNMP_TRAP, Snmp
from rawlab.decode.ssh import PORT_SSH, Ssh
from rawlab.decode.tcp import Tcp
from rawlab.decode.tls import TLS_PORTS, Tls
from rawlab.decode.udp import Udp
from rawlab.decode.view import Buffer, Raw, View
from rawlab.decode.vsockmon import Vsockmon
from rawlab.records import ARPHRD_NETLINK, CsumHint, LinkType

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
IPPROTO_ICMPV6 = 58
IPPROTO_UDPLITE = 136
MAX_LAYERS = 12

ViewCtor = Callable[[memoryview], View]


def _raw_ip(mv: memoryview) -> View:
    v = mv[0] >> 4 if len(mv) else 0
    if v == 4:
        return Ipv4(mv)
    if v == 6:
        return Ipv6(mv)
    return Raw(mv, None)


@dataclass
class DispatchTable:
    """Which view decodes what: link type → first layer, EtherType and IP protocol → next,
    UDP and TCP port → the application's view.

    A port entry matches when either port of the datagram or segment is that port; when
    both ports have an entry, the lower port number wins (Wireshark's ``decode_udp_ports``
    and ``decode_tcp_ports``: a well-known port beats an ephemeral one, and both
    directions of a conversation get the same protocol). The per-packet walk applies the
    UDP entries; TCP entries are a byte stream's, not a segment's:
    :mod:`rawlab.analysis.streams` reassembles those connections and builds the view on
    the segment that completes each message, cut by the view's ``pdu_len`` (TLS, HTTP,
    DNS over TCP, SSH; a view without one takes each segment's bytes as one message).
    """

    link: dict[int, ViewCtor] = field(default_factory=dict)
    ethertype: dict[int, ViewCtor] = field(default_factory=dict)
    ip_proto: dict[int, ViewCtor] = field(default_factory=dict)
    udp_port: dict[int, ViewCtor] = field(default_factory=dict)
    tcp_port: dict[int, ViewCtor] = field(default_factory=dict)


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
            LinkType.ETHERNET: Ethernet,
            LinkType.RAW: _raw_ip,
            LinkType.IPV4: Ipv4,
            LinkType.IPV6: Ipv6,
            LinkType.LINUX_SLL: Sll,
            LinkType.LINUX_SLL2: Sll2,
            LinkType.NETLINK: Sll,
            LinkType.VSOCK: Vsockmon,
        },
        ethertype={ETH_P_IP: Ipv4, ETH_P_IPV6: Ipv6, ETH_P_ARP: Arp},
        ip_proto={
            IPPROTO_TCP: Tcp,
            IPPROTO_UDP: Udp,
            IPPROTO_ICMP: Icmp,
            IPPROTO_ICMPV6: Icmpv6,
            IPPROTO_IPIP: Ipv4,
            IPPROTO_IPV6: Ipv6,
        },
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
    return _next(table.ethertype.get(key), buf[hl:], key)


def _after_sll(lay: Any, table: DispatchTable, linktype: int, order: str) -> View | None:
    hl = lay.header_len
    buf = lay.buf
    if len(buf) <= hl:
        return None
    if lay.hatype == ARPHRD_NETLINK or (linktype == LinkType.NETLINK and type(lay) is Sll):
        return Netlink(buf[hl:], lay.protocol, order)
    key = lay.protocol
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


def _after_udp(lay: Any, table: DispatchTable, linktype: int, order: str) -> View | None:
    sp, dp = lay.sport, lay.dport
    ports = table.udp_port
    ctor = ports.get(sp if sp < dp else dp)
    if ctor is None:
        ctor = ports.get(dp if sp < dp else sp)
        if ctor is None:
            return None  # (ports first: the common case costs two look-ups)
    payload = lay.payload
    if not len(payload) or is_stream(ctor):
        return None
    return ctor(payload)


_ICMP_ERRORS = frozenset({3, 4, 5, 11, 12})  # these quote the datagram that caused them
_ICMP6_ERRORS = frozenset({1, 2, 3, 4})


def _after_icmp(lay: Any, table: DispatchTable, linktype: int, order: str) -> View | None:
    """An ICMP error quotes the IP header and first bytes of the datagram that caused it:
    decoded as a packet of its own (as tcpdump and tshark do)."""
    payload = lay.payload
    if lay.truncated or lay.type not in _ICMP_ERRORS or len(payload) < 20 or \
            payload[0] >> 4 != 4:
        return None
    return Ipv4(payload)


def _after_icmpv6(lay: Any, table: DispatchTable, linktype: int, order: str) -> View | None:
    payload = lay.payload
    if lay.truncated or lay.type not in _ICMP6_ERRORS or len(payload) < 40 or \
            payload[0] >> 4 != 6:
        return None
    return Ipv6(payload)


#: how to find the layer after one of these views (a view not here ends the walk)
_AFTER: dict[type, Callable[[Any, DispatchTable, int, str], View | None]] = {
    Ethernet: _after_ethernet,
    Sll: _after_sll,
    Sll2: _after_sll,
    Ipv4: _after_ipv4,
    Ipv6: _after_ipv6,
    Udp: _after_udp,
    Icmp: _after_icmp,
    Icmpv6: _after_icmpv6,
}


def descend(mv: memoryview, linktype: int, table: DispatchTable,
            netlink_byteorder: str = "=") -> list[View]:
    """Every layer of ``mv`` as views (never raises; marks say what went wrong)."""
    ctor = table.link.get(linktype)
    if ctor is None:
        return [Raw(mv, linktype)]
    lay = ctor(mv)
    layers: list[View] = [lay]
    after = _AFTER.get
    while len(layers) < MAX_LAYERS:
        step = after(type(lay))
        if step is None or lay.malformed:
            break
        nxt = step(lay, table, linktype, netlink_byteorder)
        if nxt is None:
            break
        layers.append(nxt)
        lay = nxt
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
            return (net, o, NO_L4, 0, 0, 0)
        if n < o + 20:
            return _IP4_END
        vihl, tl, frag, proto = _IP4_FIELDS.unpack_from(data, o)
    # IPv4, as the Ipv4 view and _after_ipv4 see it (inline: the commonest case):
    # a version other than 4, an IHL below 5 or a total length below the header is
    # malformed; no payload captured (or none by the length) ends the walk too.
    if not 0x45 <= vihl <= 0x4F:
        return _IP4_END
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
    if hatype == ARPHRD_NETLINK:
        return None
    return data[net] << 8 | data[net + 1], hl


def _ipv6(data: bytes, o: int, n: int) -> Walk | None:
    if n - o < 40 or data[o] >> 4 != 6:
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


# ---- names: the protocol hierarchy's fast path -----------------------------------------------

_LINK_CTORS: dict[int, ViewCtor] = {
    _ETHERNET: Ethernet, _SLL: Sll, _SLL2: Sll2, _RAW: _raw_ip, _IPV4: Ipv4, _IPV6: Ipv6}
_IP_VIEW: dict[int, type[Ipv4] | type[Ipv6]] = {ETH_P_IP: Ipv4, ETH_P_IPV6: Ipv6}


def names(decoder: Decoder, data: bytes, linktype: int) -> tuple[str, ...]:
    """The layer names ``decoder.decode(data, linktype)`` gives, computed by :func:`walk`
    where it can (one dictionary look-up per packet after the first of each shape, and
    for UDP and TCP one per port: :meth:`Decoder.port_names
    <rawlab.decode.dispatch.Decoder>`). It is :meth:`Decoder.path
    <rawlab.decode.dispatch.Decoder.path>`. A TCP segment with payload on a stream
    protocol's port (TLS, HTTP, DNS over TCP) gets no application name here (only
    reassembly can tell which frame completes a message): ``decoder.stream`` is set
    to its :func:`walk` answer for the caller that reassembles (``read --stats``), when
    its first byte may start a message or ``decoder.streams_live`` (the caller follows
    connections that may continue one)."""
    w = walk(data, linktype)
    if w is not None:
        key = (linktype, w[0], w[2], w[5] & 1)  # & FRAG_LATER
        got = decoder.shapes.get(key)
        if got is None:
            got = decoder.shapes[key] = _shape_names(key, decoder.table)
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
        else:
            out[port] = getattr(ctor, "name", "_") if isinstance(ctor, type) else "_"
    return out


def _leaf_name(ctor: ViewCtor | None) -> str | None:
    """The name of the view a walk ends with; None when the walk would go on after it
    (UDP and TCP: the port step of :func:`names` follows)."""
    if ctor is None:
        return Raw.name
    if ctor is Udp or ctor is Tcp:
        return ctor.name
    if isinstance(ctor, type) and ctor not in _AFTER:
        return getattr(ctor, "name", None)
    return None


def _shape_names(key: tuple[int, int, int, int], table: DispatchTable) -> tuple[str, ...]:
    """The names for one shape :func:`walk` found; () when the table holds other views
    than the walk assumes (a caller's own entries): the caller then decodes."""
    linktype, net, proto, later = key
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
    out = (*out, _IP_VIEW[net].name)
    if proto == NO_L4:
        return out
    if later:
        return (*out, Raw.name)
    leaf = _leaf_name(table.ip_proto.get(proto))
    return (*out, leaf) if leaf else ()


# ---- the full decode, for callers that only have bytes ---------------------------------------

_DEFAULT: list[Decoder] = []


def decode(data: Buffer, linktype: int, hint: int = 0) -> Packet:
    """Every layer of ``data`` with the default table (one Decoder, made on first use)."""
    if not _DEFAULT:
        from rawlab.decode.dispatch import Decoder

        _DEFAULT.append(Decoder())
    return _DEFAULT[0].decode(data, linktype, CsumHint(hint))
