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

from typing import Any

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

__all__ = ["Decoder", "DispatchTable", "Packet", "build_table"]

_L4 = (Tcp, Udp, Icmp, Icmpv6)
_CSUM_OFFSET = {Tcp: 16, Udp: 6, Icmp: 2, Icmpv6: 2}


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
        return any(lay.truncated for lay in self.layers)

    @property
    def malformed(self) -> bool:
        return any(lay.malformed for lay in self.layers)

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
            self._csums = _checksums(self.layers, self.hint)
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
    v4 = isinstance(ip, Ipv4)
    if isinstance(lay, Icmpv6 if v4 else Icmp):  # the other family's ICMP: no rule to check
        value = (seg[off] << 8 | seg[off + 1]) if len(seg) >= off + 2 else None
        return ChecksumStatus(Verdict.UNVERIFIED, value)
    if isinstance(ip, Ipv4):
        complete = not ip.truncated and not ip.more_fragments
        dst = ip.dst
    else:
        frag = ip.fragment
        complete = not ip.truncated and not (frag is not None and frag.more)
        dst = _final_dst(ip)  # a Routing header changes it; the pseudo-header uses it
    return verify_l4(ip.proto, ip.src, dst, seg, off, complete=complete, hint=hint,
                     tso=ip.tso and not isinstance(lay, Icmp | Icmpv6))


def _final_dst(ip: Ipv6) -> bytes:
    for e in ip.ext_headers:
        # Type 0 / type 2 routing headers: addresses follow the 8-byte header;
        # the last one is the final destination.
        if e.type == 43 and len(e.data) >= 24 and e.data[2] in (0, 2) and e.data[3] > 0:
            return e.data[-16:]
    return ip.dst


class Decoder:
    """Decodes records of any supported link type with one explicit table."""

    __slots__ = ("netlink_byteorder", "port_names", "port_pairs", "shapes", "stream",
                 "streams_live", "table")

    def __init__(self, table: DispatchTable | None = None, *, netlink_byteorder: str = "=") -> None:
        self.table = table if table is not None else build_table()
        self.netlink_byteorder = netlink_byteorder
        #: layer names by shape, for :meth:`path` (rawlab.decode.descent.names)
        self.shapes: dict[tuple[int, int, int, int], tuple[str, ...]] = {}
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

    def decode(self, data: Buffer, linktype: int, hint: CsumHint = CsumHint.NONE) -> Packet:
        """Every layer of ``data`` (never raises; marks say what went wrong)."""
        mv = as_view(data)
        return Packet(linktype, mv, descend(mv, linktype, self.table, self.netlink_byteorder),
                      hint)

    #: ``path(data, linktype)``: the layer names :meth:`decode` would give, computed
    #: without building views for the common shapes (for ``--stats``)
    path = names
