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
    pkt.extend(views)                        # layers found later (application messages)
    dec.path(data, linktype)                 # fast path: just the names, same as pkt.names

Which header follows which (the table, :func:`build_table`, and the walk) is
:mod:`rawlab.decode.descent`; a caller may add entries to a table before
handing it to a Decoder.

Checksums: the IPv4 header checksum is always verified; TCP, UDP, ICMP and
ICMPv6 are verified against their IP layer's pseudo-header, unless the hint
says the kernel did not fill them (partial) or already checked them
(kernel-verified), or the IP length is 0 (offload: partial). Checksums are
computed only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from rawlab.decode.checksum import (
    ChecksumStatus,
    CsumHint,
    Verdict,
    verify_ipv4_header,
    verify_l4,
    worst,
)
from rawlab.decode.descent import DispatchTable, build_table, descend, names, port_names
from rawlab.decode.icmp import Icmp
from rawlab.decode.icmpv6 import Icmpv6
from rawlab.decode.ipv4 import Ipv4
from rawlab.decode.ipv6 import Ipv6
from rawlab.decode.tcp import Tcp
from rawlab.decode.udp import Udp
from rawlab.decode.view import Buffer, View, as_view

__all__ = ["Decoder", "DispatchTable", "Packet", "Reassembled", "build_table"]

_L4 = (Tcp, Udp, Icmp, Icmpv6)
_CSUM_OFFSET = {Tcp: 16, Udp: 6, Icmp: 2, Icmpv6: 2}


class Reassembled(NamedTuple):
    """The layers after ``layers[at]`` (an IPv4 or IPv6 header) decode a whole datagram
    put back together from ``frames`` (rawlab.analysis.reassembly); ``length`` is its
    payload's size. Checksums above it cover the whole datagram."""

    at: int
    frames: tuple[int, ...]
    length: int


class Packet:
    """A decoded packet: its layers, and (lazily) the checksum status of each."""

    __slots__ = ("_csums", "cut", "data", "hint", "layers", "linktype", "reassembled")

    def __init__(self, linktype: int, data: memoryview, layers: list[View],
                 hint: CsumHint = CsumHint.NONE, reassembled: Reassembled | None = None,
                 cut: bool = True) -> None:
        self.linktype = linktype
        self.data = data
        self.layers = layers
        self.hint = hint
        #: True unless known that the snaplen did not cut the frame (Decoder.decode's
        #: wirelen): a length field past the end then means missing bytes
        self.cut = cut
        #: set when the layers above an IP header decode a reassembled datagram
        self.reassembled = reassembled
        self._csums: tuple[ChecksumStatus | None, ...] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple([lay.name for lay in self.layers])

    @property
    def quoted(self) -> int:
        """Where the packet an ICMP/ICMPv6 error quotes begins (its index in ``layers``);
        ``len(layers)`` when there is none. The layers before it are the packet itself."""
        for i, lay in enumerate(self.layers[:-1]):
            if lay.name in ("icmp", "icmpv6"):
                return i + 1
        return len(self.layers)

    def outer(self, name: str) -> Any:
        """The first layer called ``name`` of the packet itself (not of a quoted one)."""
        for lay in self.layers[: self.quoted]:
            if lay.name == name:
                return lay
        return None

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
        for lay in self.layers:  # noqa: SIM110 - a loop: any() of a generator costs more
            if lay.truncated:
                return True
        return False

    @property
    def malformed(self) -> bool:
        for lay in self.layers:  # noqa: SIM110 - as truncated
            if lay.malformed:
                return True
        return False

    @property
    def payload(self) -> memoryview:
        """What the last layer carries (application bytes for TCP/UDP: the payload of the
        transport layer, also when application layers follow it)."""
        for lay in reversed(self.layers):
            if not lay.application:
                return lay.payload
        return self.data

    @property
    def checksums(self) -> tuple[ChecksumStatus | None, ...]:
        """One entry per layer: a status for layers that carry a checksum, else None."""
        if self._csums is None:
            whole = self.reassembled.at if self.reassembled is not None else -1
            self._csums = _checksums(self.layers, self.hint, whole, self.cut)
        return self._csums

    def extend(self, views: list[View]) -> None:
        """Append layers found later (the application messages a TCP segment completes:
        rawlab.analysis.streams); they carry no checksum."""
        self.layers.extend(views)
        if self._csums is not None:
            self._csums += (None,) * len(views)

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


def _checksums(layers: list[View], hint: CsumHint, whole: int = -1,
               cut: bool = True) -> tuple[ChecksumStatus | None, ...]:
    """``whole``: the index of an IP layer whose payload above is a reassembled datagram;
    ``cut``: the snaplen may have cut the frame (see :meth:`Decoder.decode`)."""
    out: list[ChecksumStatus | None] = []
    prev: View | None = None
    reip = layers[whole] if whole >= 0 else None
    for lay in layers:
        cs: ChecksumStatus | None = None
        if isinstance(lay, Ipv4):
            cs = verify_ipv4_header(lay.buf[: lay.header_len])
        elif isinstance(lay, _L4) and isinstance(prev, Ipv4 | Ipv6):
            cs = _l4_status(prev, lay, hint, prev is reip, cut)
        out.append(cs)
        prev = lay
    return tuple(out)


def _l4_status(ip: Ipv4 | Ipv6, lay: View, hint: CsumHint, reassembled: bool = False,
               cut: bool = True) -> ChecksumStatus:
    """The transport checksum's verdict, judged as tshark judges it: a UDP checksum covers
    the UDP length (bytes past it are not the datagram's); a UDP length past the IP
    payload leaves it unverified; an IP length past a whole (uncut) frame leaves the
    bytes there are, over which it is checked."""
    off = _CSUM_OFFSET[type(lay)]
    seg = lay.buf
    v4 = isinstance(ip, Ipv4)
    if isinstance(lay, Icmpv6 if v4 else Icmp):  # the other family's ICMP: no rule to check
        value = (seg[off] << 8 | seg[off + 1]) if len(seg) >= off + 2 else None
        return ChecksumStatus(Verdict.UNVERIFIED, value)
    whole_ip = not ip.truncated or not cut  # every byte of it captured, or all there is
    if type(lay) is Udp and len(seg) >= 8:
        ulen = seg[4] << 8 | seg[5]
        if ulen > len(seg) and whole_ip:  # "bad length": past the IP payload
            return ChecksumStatus(Verdict.UNVERIFIED, seg[6] << 8 | seg[7])
        if 8 <= ulen <= len(seg):
            seg = seg[:ulen]  # the datagram is whole: trailing bytes are not its
            whole_ip = True
    if v4:
        complete = reassembled or (whole_ip and not ip.more_fragments)
        src, dst, proto = ip.src, ip.dst, ip.proto
    else:
        frag = ip.fragment
        complete = reassembled or (whole_ip and not (frag is not None and frag.more))
        # the pseudo-header's addresses: the final destination of a Routing header, the
        # Home Address option's source (RFC 8200 §8.1, RFC 6275 §6.3)
        src, dst = _home_address(ip), _final_dst(ip)
        proto = _frag_next(ip) if reassembled else ip.proto
    return verify_l4(proto, src, dst, seg, off, complete=complete, hint=hint,
                     tso=ip.tso and not reassembled and not isinstance(lay, Icmp | Icmpv6))


def _frag_next(ip: Ipv6) -> int:
    """The next header after an IPv6 Fragment header: a reassembled datagram's protocol."""
    for e in ip.ext_headers:
        if e.type == 44:
            return e.next_header
    return ip.proto


def _final_dst(ip: Ipv6) -> bytes:
    """The destination the pseudo-header uses (RFC 8200 §8.1): with segments left in a
    Routing header, its final one (types 0 and 2: the last address; type 4, the segment
    routing header, RFC 8754: Segment List[0], the first)."""
    for e in ip.ext_headers:
        d = e.data
        if e.type != 43 or len(d) < 24 or d[3] == 0:
            continue
        if d[2] in (0, 2):
            return d[-16:]
        if d[2] == 4:
            return d[8:24]
    return ip.dst


def _home_address(ip: Ipv6) -> bytes:
    """The source the pseudo-header uses: the Home Address destination option (0xc9,
    RFC 6275 §6.3) when the packet carries one, else the header's source."""
    for e in ip.ext_headers:
        if e.type != 60:
            continue
        d, i = e.data, 2
        while i < len(d):
            t = d[i]
            if t == 0:  # Pad1
                i += 1
                continue
            if i + 2 > len(d):
                break
            ln = d[i + 1]
            if t == 0xC9 and ln == 16 and i + 18 <= len(d):
                return d[i + 2 : i + 18]
            i += 2 + ln
    return ip.src


class Decoder:
    """Decodes records of any supported link type with one explicit table."""

    __slots__ = ("fragments", "netlink_byteorder", "port_names", "port_pairs", "shapes",
                 "stream", "streams_live", "table")

    def __init__(self, table: DispatchTable | None = None, *, netlink_byteorder: str = "=",
                 fragments: Callable[[bytes, int], tuple[str, ...]] | None = None) -> None:
        self.table = table if table is not None else build_table()
        self.netlink_byteorder = netlink_byteorder
        #: layer names by shape, for :meth:`path` (rawlab.decode.descent.names); the
        #: table must not change once the decoder has used it
        self.shapes: dict[tuple[int, int, int, int], tuple[str, ...]] = {}
        #: :meth:`path` of an IP fragment, when set: ``fragments(data, linktype)`` (IP
        #: reassembly across packets is the caller's: rawlab.analysis.reassembly)
        self.fragments = fragments
        #: the application layer's name by UDP and by TCP port, for :meth:`path`
        self.port_names = (port_names(self.table.udp_port),
                           port_names(self.table.tcp_port, tcp=True))
        #: the entry of port_names a UDP / TCP port pair (4 bytes) leads to ("" none)
        self.port_pairs: tuple[dict[bytes, str | bytes], dict[bytes, str | bytes]] = ({}, {})
        #: set by :meth:`path` for a TCP segment a stream protocol's reassembly must see
        #: (its descent.walk answer); the caller resets it
        self.stream: tuple[int, ...] | None = None
        #: the caller follows connections whose next segment may continue a message
        self.streams_live = False

    def decode(self, data: Buffer, linktype: int, hint: CsumHint = CsumHint.NONE,
               wirelen: int | None = None) -> Packet:
        """Every layer of ``data`` (never raises; marks say what went wrong). ``wirelen``,
        the frame's length on the wire, tells a frame the snaplen cut (a length field
        past the capture: not all bytes are here) from a whole frame that is shorter than
        its IP header claims (the bytes there are are all there is: checksums are
        judged over them, as tshark does)."""
        mv = as_view(data)
        return Packet(linktype, mv, descend(mv, linktype, self.table, self.netlink_byteorder),
                      hint, cut=wirelen is None or wirelen > len(mv))

    #: ``path(data, linktype)``: the layer names :meth:`decode` would give, computed
    #: without building views for the common shapes (for ``--stats``)
    path = names
