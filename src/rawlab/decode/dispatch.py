"""From a link type and bytes to a decoded :class:`Packet` (a list of layer views).

    from rawlab.decode.dispatch import Decoder, build_table
    dec = Decoder()                          # builds its table now, not at import
    pkt = dec.decode(data, linktype)         # never raises
    pkt = dec.decode(data, linktype, hint=CsumHint.NOT_READY)   # live capture's tp_status bits
    pkt.layers                               # [Ethernet, Ipv4, Tcp] (views, see each module)
    pkt.names                                # ("eth", "ipv4", "tcp")
    pkt["tcp"] / pkt.layer("tcp")            # the first layer of that name (KeyError / None)
    pkt.checksums                            # tuple parallel to layers: ChecksumStatus | None
    pkt.csum_status                          # the most worrying one, or None (computed lazily)
    pkt.truncated, pkt.malformed             # any layer so marked
    dec.path(data, linktype)                 # fast path: just the names, same as pkt.names

The table (:class:`DispatchTable`) is plain dicts from link type, EtherType
and IP protocol number to view constructors; :func:`build_table` makes a fresh
one each call, and a caller may add entries before handing it to a Decoder.

Descent rules (the same in :meth:`Decoder.decode` and :meth:`Decoder.path`):
a layer is followed by the next one only if it is not malformed, its header
was captured whole and its payload is not empty. An unknown EtherType or
protocol, or a non-first IP fragment, ends in a :class:`~rawlab.decode.view.Raw`
layer named ``data`` that keeps the number and the bytes.

Checksums: the IPv4 header checksum is always verified; TCP, UDP, ICMP and
ICMPv6 are verified against their IP layer's pseudo-header, unless the hint
says the kernel did not fill them (partial) or already checked them
(kernel-verified). Checksums are computed only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rawlab.decode.arp import Arp
from rawlab.decode.checksum import (
    ChecksumStatus,
    CsumHint,
    Verdict,
    verify_ipv4_header,
    verify_l4_v4,
    verify_l4_v6,
    worst,
)
from rawlab.decode.ethernet import ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, VLAN_TPIDS, Ethernet
from rawlab.decode.icmp import Icmp
from rawlab.decode.icmpv6 import Icmpv6
from rawlab.decode.ipv4 import Ipv4
from rawlab.decode.ipv6 import NH_FRAGMENT, Ipv6
from rawlab.decode.netlink import Netlink
from rawlab.decode.sll import Sll, Sll2
from rawlab.decode.tcp import Tcp
from rawlab.decode.udp import Udp
from rawlab.decode.view import Buffer, Raw, View, as_view
from rawlab.decode.vsockmon import Vsockmon
from rawlab.records import ARPHRD_NETLINK, LinkType

IPPROTO_IPIP = 4
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_ICMP = 1
IPPROTO_ICMPV6 = 58
MAX_LAYERS = 12
_K_ETH, _K_SLL, _K_IP4, _K_IP6 = range(4)
_KIND = {Ethernet: _K_ETH, Sll: _K_SLL, Sll2: _K_SLL, Ipv4: _K_IP4, Ipv6: _K_IP6}

ViewCtor = Callable[[memoryview], View]
_L4 = (Tcp, Udp, Icmp, Icmpv6)
_CSUM_OFFSET = {Tcp: 16, Udp: 6, Icmp: 2, Icmpv6: 2}


def _raw_ip(mv: memoryview) -> View:
    v = mv[0] >> 4 if len(mv) else 0
    if v == 4:
        return Ipv4(mv)
    if v == 6:
        return Ipv6(mv)
    return Raw(mv, None)


@dataclass
class DispatchTable:
    """Which view decodes what: link type → first layer, EtherType and IP protocol → next."""

    link: dict[int, ViewCtor] = field(default_factory=dict)
    ethertype: dict[int, ViewCtor] = field(default_factory=dict)
    ip_proto: dict[int, ViewCtor] = field(default_factory=dict)


def build_table() -> DispatchTable:
    """The default table, built when called (nothing happens at import)."""
    return DispatchTable(
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


class Packet:
    """A decoded packet: its layers, and (lazily) the checksum status of each."""

    __slots__ = ("_csums", "data", "hint", "layers", "linktype")

    def __init__(self, linktype: int, data: memoryview, layers: list[View],
                 hint: CsumHint = CsumHint.NONE) -> None:
        self.linktype = linktype
        self.data = data
        self.layers = layers
        self.hint = hint
        self._csums: tuple[ChecksumStatus | None, ...] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(lay.name for lay in self.layers)

    def layer(self, name: str) -> Any:
        """The first layer called ``name`` ("eth", "ipv4", "tcp" ...), or None."""
        for lay in self.layers:
            if lay.name == name:
                return lay
        return None

    def __getitem__(self, name: str) -> Any:
        lay = self.layer(name)
        if lay is None:
            raise KeyError(name)
        return lay

    def __contains__(self, name: object) -> bool:
        return any(lay.name == name for lay in self.layers)

    @property
    def truncated(self) -> bool:
        return any(lay.truncated for lay in self.layers)

    @property
    def malformed(self) -> bool:
        return any(lay.malformed for lay in self.layers)

    @property
    def payload(self) -> memoryview:
        """What the last layer carries (application bytes for TCP/UDP)."""
        return self.layers[-1].payload if self.layers else self.data

    @property
    def checksums(self) -> tuple[ChecksumStatus | None, ...]:
        """One entry per layer: a status for layers that carry a checksum, else None."""
        if self._csums is None:
            self._csums = _checksums(self.layers, self.hint)
        return self._csums

    def checksum(self, name: str) -> ChecksumStatus | None:
        """The status of the first layer called ``name``."""
        for lay, cs in zip(self.layers, self.checksums, strict=True):
            if lay.name == name:
                return cs
        return None

    @property
    def csum_status(self) -> ChecksumStatus | None:
        return worst([c for c in self.checksums if c is not None])

    def __repr__(self) -> str:
        return f"<Packet linktype={self.linktype} {'/'.join(self.names)}>"


def _checksums(layers: list[View], hint: CsumHint) -> tuple[ChecksumStatus | None, ...]:
    out: list[ChecksumStatus | None] = []
    prev: View | None = None
    for lay in layers:
        cs: ChecksumStatus | None = None
        if isinstance(lay, Ipv4):
            cs = verify_ipv4_header(lay.buf[: lay.header_len])
        elif isinstance(lay, _L4) and isinstance(prev, Ipv4 | Ipv6):
            cs = _l4_status(prev, lay, hint)
        out.append(cs)
        prev = lay
    return tuple(out)


def _l4_status(ip: Ipv4 | Ipv6, lay: View, hint: CsumHint) -> ChecksumStatus:
    off = _CSUM_OFFSET[type(lay)]
    seg = lay.buf
    value = (seg[off] << 8 | seg[off + 1]) if len(seg) >= off + 2 else None
    if isinstance(ip, Ipv4):
        if isinstance(lay, Icmpv6):
            return ChecksumStatus(Verdict.UNVERIFIED, value)
        if ip.tso and not isinstance(lay, Icmp):
            return ChecksumStatus(Verdict.PARTIAL, value)
        complete = not ip.truncated and not ip.more_fragments
        return verify_l4_v4(ip.proto, ip.src, ip.dst, seg, off, complete=complete, hint=hint)
    if isinstance(lay, Icmp):
        return ChecksumStatus(Verdict.UNVERIFIED, value)
    if ip.tso and not isinstance(lay, Icmpv6):
        return ChecksumStatus(Verdict.PARTIAL, value)
    frag = ip.fragment
    complete = not ip.truncated and not (frag is not None and frag.more)
    # A Routing header changes the final destination; the pseudo-header uses it.
    dst = _final_dst(ip)
    return verify_l4_v6(ip.proto, ip.src, dst, seg, off, complete=complete, hint=hint)


def _final_dst(ip: Ipv6) -> bytes:
    for e in ip.ext_headers:
        # Type 0 / type 2 routing headers: addresses follow the 8-byte header;
        # the last one is the final destination.
        if e.type == 43 and len(e.data) >= 24 and e.data[2] in (0, 2) and e.data[3] > 0:
            return e.data[-16:]
    return ip.dst


class Decoder:
    """Decodes records of any supported link type with one explicit table."""

    __slots__ = ("netlink_byteorder", "table")

    def __init__(self, table: DispatchTable | None = None, *, netlink_byteorder: str = "=") -> None:
        self.table = table if table is not None else build_table()
        self.netlink_byteorder = netlink_byteorder

    def decode(self, data: Buffer, linktype: int, hint: CsumHint = CsumHint.NONE) -> Packet:
        """Every layer of ``data`` (never raises; marks say what went wrong)."""
        mv = as_view(data)
        table = self.table
        ctor = table.link.get(linktype)
        if ctor is None:
            return Packet(linktype, mv, [Raw(mv, linktype)], hint)
        lay = ctor(mv)
        layers: list[View] = [lay]
        kind_of = _KIND.get
        while len(layers) < MAX_LAYERS:
            kind = kind_of(type(lay))
            if kind is None or lay.malformed:
                break
            buf = lay.buf
            if kind == _K_IP4:
                hl = lay.hlen  # type: ignore[attr-defined]
                end = lay.end  # type: ignore[attr-defined]
                if end <= hl or len(buf) < hl:
                    break
                payload = buf[hl:end]
                key = lay.proto  # type: ignore[attr-defined]
                if lay.frag_offset:  # type: ignore[attr-defined]
                    lay = Raw(payload, key)
                else:
                    nxt = table.ip_proto.get(key)
                    lay = Raw(payload, key) if nxt is None else nxt(payload)
            elif kind == _K_ETH:
                hl = lay.hlen  # type: ignore[attr-defined]
                key = lay.ethertype  # type: ignore[attr-defined]
                if len(buf) <= hl or key in VLAN_TPIDS:  # nothing after, or a tag cut short
                    break
                payload = buf[hl:]
                nxt = table.ethertype.get(key)
                lay = Raw(payload, key) if nxt is None else nxt(payload)
            elif kind == _K_IP6:
                hl = lay.hlen  # type: ignore[attr-defined]
                payload = lay.payload
                if len(buf) < hl or not len(payload):
                    break
                key = lay.proto  # type: ignore[attr-defined]
                exts = lay.ext_headers  # type: ignore[attr-defined]
                if exts and exts[-1].type == NH_FRAGMENT and lay.fragment.offset:  # type: ignore
                    lay = Raw(payload, key)
                else:
                    nxt = table.ip_proto.get(key)
                    lay = Raw(payload, key) if nxt is None else nxt(payload)
            else:  # _K_SLL
                hl = lay.header_len
                if len(buf) <= hl:
                    break
                payload = buf[hl:]
                if lay.hatype == ARPHRD_NETLINK or (  # type: ignore[attr-defined]
                        linktype == LinkType.NETLINK and type(lay) is Sll):
                    lay = Netlink(payload, lay.protocol,  # type: ignore[attr-defined]
                                  self.netlink_byteorder)
                else:
                    key = lay.protocol  # type: ignore[attr-defined]
                    nxt = table.ethertype.get(key)
                    lay = Raw(payload, key) if nxt is None else nxt(payload)
            layers.append(lay)
        return Packet(linktype, mv, layers, hint)

    # ---- fast path: names only -------------------------------------------------------------

    def path(self, data: bytes, linktype: int) -> tuple[str, ...]:
        """The layer names :meth:`decode` would give, computed without building views
        for the common Ethernet/IPv4 cases (for ``--stats``)."""
        if linktype == 1:
            n = len(data)
            if n <= 14:
                return _ETH
            et = data[12] << 8 | data[13]
            if et == ETH_P_IP:
                return _ipv4_path(data, 14, n, _ETH_IP, self)
            if et in VLAN_TPIDS or et == ETH_P_IPV6:
                return self.decode(data, linktype).names
            nxt = self.table.ethertype.get(et)
            if nxt is None:
                return _ETH_DATA
            return self.decode(data, linktype).names
        if linktype == LinkType.RAW and data and data[0] >> 4 == 4:
            return _ipv4_path(data, 0, len(data), _IP, self)
        return self.decode(data, linktype).names


_ETH = ("eth",)
_ETH_DATA = ("eth", "data")
_ETH_IP = {
    None: ("eth", "ipv4"),
    IPPROTO_TCP: ("eth", "ipv4", "tcp"),
    IPPROTO_UDP: ("eth", "ipv4", "udp"),
    IPPROTO_ICMP: ("eth", "ipv4", "icmp"),
    IPPROTO_ICMPV6: ("eth", "ipv4", "icmpv6"),
    -1: ("eth", "ipv4", "data"),
}
_IP = {k: v[1:] for k, v in _ETH_IP.items()}


def _ipv4_path(data: bytes, o: int, n: int, names: dict[int | None, tuple[str, ...]],
               dec: Decoder) -> tuple[str, ...]:
    if n - o < 20:
        return names[None]
    vihl = data[o]
    hl = (vihl & 0x0F) * 4
    tl = data[o + 2] << 8 | data[o + 3]
    if vihl >> 4 != 4 or hl < 20 or (tl and tl < hl) or n - o < hl:
        return names[None]
    end = n if tl == 0 else min(o + tl, n)
    if end <= o + hl:
        return names[None]
    proto = data[o + 9]
    if (data[o + 6] & 0x1F) | data[o + 7]:
        return names[-1]
    got = names.get(proto)
    if got is not None:
        return got
    if proto in dec.table.ip_proto:
        linktype = 1 if names is _ETH_IP else 101
        return dec.decode(data, linktype).names
    return names[-1]
